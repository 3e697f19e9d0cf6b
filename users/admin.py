from django.contrib import admin

from .models import Recipient


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ["id", "username", "name", "last_name", "email", "mobile", "opted_out", "created_at"]
    list_filter = ["opted_out", "created_at"]
    search_fields = ["=id", "username", "email", "last_name"]
    readonly_fields = ["created_at", "updated_at"]
    list_per_page = 100
    show_full_result_count = False
