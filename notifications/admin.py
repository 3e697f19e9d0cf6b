from django import forms
from django.contrib import admin, messages

from .models import Delivery, NotificationMessage, Suppression
from .services import deliveries_retry_failed
from .suppression import normalize_address


@admin.register(NotificationMessage)
class NotificationMessageAdmin(admin.ModelAdmin):
    list_display = ["message_id", "description", "timestamp", "stream_id", "received_at"]
    search_fields = ["description", "=message_id", "=event_id"]
    date_hierarchy = "timestamp"
    readonly_fields = ["event_id", "message_id", "description", "timestamp", "stream_id", "received_at"]
    list_per_page = 100


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """The delivery ledger; filter by campaign and status=failed to see failed recipients."""

    list_display = [
        "id",
        "campaign",
        "recipient",
        "channel",
        "address",
        "status",
        "attempts",
        "smtp_code",
        "sent_at",
    ]
    list_filter = ["status", "channel", "campaign"]
    search_fields = ["=id", "address", "=message_id", "dedupe_key"]
    list_select_related = ["campaign", "recipient"]
    raw_id_fields = ["campaign", "recipient"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["retry_failed"]
    list_per_page = 100
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Retry the selected failed deliveries")
    def retry_failed(self, request, queryset) -> None:
        retried = deliveries_retry_failed(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Queued {retried} failed delivery(ies) again.", messages.SUCCESS)


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["address", "reason", "detail"]

    def clean_address(self) -> str:
        address = normalize_address(self.cleaned_data["address"])
        forms.EmailField().clean(address)
        return address


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """Addresses campaign mail no longer goes to; delete one to reach it again."""

    form = SuppressionForm
    list_display = ["address", "reason", "source", "created_at"]
    list_filter = ["reason"]
    search_fields = ["address", "source"]
    date_hierarchy = "created_at"
    list_per_page = 100

    def get_readonly_fields(self, request, obj=None):
        # An entry is history: added or deleted, never rewritten.
        return ["address", "reason", "source", "detail", "created_at"] if obj is not None else ["source", "created_at"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.source = f"admin:{request.user.get_username()}"[:200]
        super().save_model(request, obj, form, change)
