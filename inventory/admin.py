from django.contrib import admin

from .models import Product, Reservation


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "price", "stock", "updated_at"]
    list_filter = ["updated_at"]
    search_fields = ["=id", "name"]


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ["order_id", "customer_id", "status", "amount", "reason", "created_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["=order_id", "=customer_id"]
    readonly_fields = [
        "order_id",
        "customer_id",
        "lines",
        "amount",
        "status",
        "reason",
        "created_at",
        "updated_at",
    ]
