from django.contrib import admin

from .models import CustomerMessage, Order


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "status", "total", "created_at", "finalized_at"]
    list_filter = ["status"]
    search_fields = ["=id", "=customer__id", "customer__name", "idempotency_key"]
    list_select_related = ["customer"]
    readonly_fields = [
        "created_by",
        "idempotency_key",
        "request_hash",
        "created_at",
        "updated_at",
        "finalized_at",
    ]


@admin.register(CustomerMessage)
class CustomerMessageAdmin(admin.ModelAdmin):
    list_display = ["order", "customer", "status", "text", "created_at"]
    list_filter = ["status"]
    search_fields = ["=order__id", "=customer__id", "text"]
    list_select_related = ["customer", "order"]
