from django.contrib import admin

from .models import NotificationMessage


@admin.register(NotificationMessage)
class NotificationMessageAdmin(admin.ModelAdmin):
    list_display = ["message_id", "description", "timestamp", "stream_id", "received_at"]
    search_fields = ["description", "=message_id", "=event_id"]
    date_hierarchy = "timestamp"
    readonly_fields = ["event_id", "message_id", "description", "timestamp", "stream_id", "received_at"]
    list_per_page = 100
