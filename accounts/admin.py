from django.contrib import admin

from .models import Account, Payment


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "email", "balance", "updated_at"]
    list_filter = ["updated_at"]
    search_fields = ["=id", "name", "email"]


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["order_id", "account", "amount", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["=order_id", "=account__id"]
    readonly_fields = ["order_id", "account", "amount", "status", "created_at"]
