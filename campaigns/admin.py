from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from .models import Campaign
from .services import campaign_cancel, campaign_retry_failed
from .states import IllegalTransition


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "status",
        "progress",
        "recipients_count",
        "sent_count",
        "failed_count",
        "skipped_count",
        "created_at",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["=id", "name", "subject"]
    actions = ["cancel_campaigns", "retry_failed_recipients"]
    readonly_fields = [
        "status",
        "progress",
        "recipients_count",
        "sent_count",
        "failed_count",
        "skipped_count",
        "failed_recipients",
        "fanout_cursor",
        "batches_published",
        "batches_routed",
        "fanout_done_at",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # created through the API, which validates the templates and publishes the event

    @admin.display(description="progress")
    def progress(self, obj: Campaign) -> str:
        percent = obj.progress_percent
        return format_html(
            '<div style="width:140px;background:#eee;border-radius:3px" title="{} of {}">'
            '<div style="width:{}%;background:{};color:#fff;font-size:11px;padding:1px 4px;border-radius:3px;'
            'white-space:nowrap">{}%</div></div>',
            obj.processed_count,
            obj.recipients_count,
            percent,
            "#ba2121" if obj.failed_count else "#417690",
            percent,
        )

    @admin.display(description="failed recipients")
    def failed_recipients(self, obj: Campaign) -> str:
        url = reverse("admin:notifications_delivery_changelist") + f"?campaign__id__exact={obj.pk}&status__exact=failed"
        return format_html('<a href="{}">{} failed</a>', url, obj.failed_count)

    @admin.action(description="Cancel the selected campaigns")
    def cancel_campaigns(self, request, queryset) -> None:
        cancelled = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                campaign_cancel(campaign_id=pk)
                cancelled += 1
            except IllegalTransition as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"Cancelled {cancelled} campaign(s).", messages.SUCCESS)

    @admin.action(description="Retry only the failed recipients")
    def retry_failed_recipients(self, request, queryset) -> None:
        retried = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                retried += campaign_retry_failed(campaign_id=pk)
            except IllegalTransition as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"Queued {retried} failed recipient(s) again.", messages.SUCCESS)
