from django.contrib import admin

from commsplatform.validators import NoControlCharactersAdminMixin

from .models import Recipient


@admin.register(Recipient)
class RecipientAdmin(NoControlCharactersAdminMixin, admin.ModelAdmin):
    # Each can be rendered into a campaign subject ({{ name }}): no line breaks.
    no_control_characters = ("username", "name", "last_name", "email", "mobile", "device_id")
    list_display = ["id", "username", "name", "last_name", "email", "mobile", "opted_out", "created_at"]
    list_filter = ["opted_out", "created_at"]
    search_fields = ["=id", "username", "email", "last_name"]
    readonly_fields = ["created_at", "updated_at"]
    list_per_page = 100
    show_full_result_count = False
