from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from commsplatform.validators import NoControlCharactersAdminMixin
from notifications.smtp import SmtpUnavailable
from users.models import Recipient

from .models import TERMINAL_STATUSES, Campaign
from .preview import InvalidMessage, UnknownRecipient, campaign_preview, campaign_send_test
from .selectors import campaign_delivery_stats, campaign_failures, campaign_retryable_count
from .services import campaign_cancel, campaign_pause, campaign_queue, campaign_resume, campaign_retry_failed
from .states import EDITABLE_STATUSES, IllegalTransition

# What is sent: editable while a campaign is a draft or scheduled, read-only once it may be sending.
_CONTENT_FIELDS = ["subject", "body", "html_body", "send_at"]
_DRAFT_ONLY_FIELDS = ["from_email", "channels"]


@admin.register(Campaign)
class CampaignAdmin(NoControlCharactersAdminMixin, admin.ModelAdmin):
    no_control_characters = ("name", "subject", "from_email")  # they can reach a mail header
    change_form_template = "admin/campaigns/campaign/change_form.html"

    class Media:
        css = {"all": ["campaigns/admin.css"]}

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
        "paused_reason",
        "progress",
        "deliveries_by_status",
        "latest_failures",
        "preview",
        "recipients_count",
        "deliveries_expected",
        "sent_count",
        "failed_count",
        "skipped_count",
        "unsubscribed_count",
        "bounced_count",
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

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status not in EDITABLE_STATUSES:
            fields += _CONTENT_FIELDS
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            fields += _DRAFT_ONLY_FIELDS
        return fields

    def save_model(self, request, obj, form, change):
        # Content changes only while the row is still editable (the scheduler may have
        # started it since the form was loaded): a conditional UPDATE, not a save().
        if change and obj.pk:
            changed = {name: getattr(obj, name) for name in form.changed_data}
            content = {k: v for k, v in changed.items() if k in _CONTENT_FIELDS + _DRAFT_ONLY_FIELDS}
            other = {k: v for k, v in changed.items() if k not in content}
            if other:
                Campaign.objects.filter(pk=obj.pk).update(**other)
            if content and not Campaign.objects.filter(pk=obj.pk, status__in=EDITABLE_STATUSES).update(**content):
                self.message_user(request, "The campaign has started: it can no longer be edited.", messages.WARNING)
            return
        super().save_model(request, obj, form, change)

    # -- change page buttons (POST, CSRF-checked by the admin site) ------------------------
    def get_urls(self):
        def view(action):
            return self.admin_site.admin_view(require_POST(action))

        return [
            path("<int:campaign_id>/send/", view(self.send_view), name="campaigns_campaign_send"),
            path("<int:campaign_id>/cancel/", view(self.cancel_view), name="campaigns_campaign_cancel"),
            path("<int:campaign_id>/pause/", view(self.pause_view), name="campaigns_campaign_pause"),
            path("<int:campaign_id>/resume/", view(self.resume_view), name="campaigns_campaign_resume"),
            path("<int:campaign_id>/send-test/", view(self.send_test_view), name="campaigns_campaign_send_test"),
            path(
                "<int:campaign_id>/retry-failed/",
                view(self.retry_failed_view),
                name="campaigns_campaign_retry_failed",
            ),
            *super().get_urls(),
        ]

    def _campaign_for_change(self, request: HttpRequest, campaign_id: int) -> Campaign:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        return campaign

    def _back(self, campaign_id: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign_id]))

    def send_view(self, request: HttpRequest, campaign_id: int) -> HttpResponseRedirect:
        self._campaign_for_change(request, campaign_id)
        try:
            campaign_queue(campaign_id=campaign_id)
        except IllegalTransition as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, "The campaign is queued for sending.", messages.SUCCESS)
        return self._back(campaign_id)

    def cancel_view(self, request: HttpRequest, campaign_id: int) -> HttpResponseRedirect:
        self._campaign_for_change(request, campaign_id)
        try:
            campaign_cancel(campaign_id=campaign_id)
        except IllegalTransition as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, "The campaign is cancelled; unsent deliveries are cancelled.", messages.SUCCESS)
        return self._back(campaign_id)

    def pause_view(self, request: HttpRequest, campaign_id: int) -> HttpResponseRedirect:
        self._campaign_for_change(request, campaign_id)
        try:
            campaign_pause(campaign_id=campaign_id)
        except IllegalTransition as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, "The campaign is paused; unsent deliveries wait.", messages.SUCCESS)
        return self._back(campaign_id)

    def resume_view(self, request: HttpRequest, campaign_id: int) -> HttpResponseRedirect:
        self._campaign_for_change(request, campaign_id)
        try:
            campaign_resume(campaign_id=campaign_id)
        except IllegalTransition as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, "The campaign sends again from where it stopped.", messages.SUCCESS)
        return self._back(campaign_id)

    def send_test_view(self, request: HttpRequest, campaign_id: int) -> HttpResponseRedirect:
        self._campaign_for_change(request, campaign_id)
        email = request.POST.get("email", "").strip()
        try:
            validate_email(email)
            reply = campaign_send_test(campaign_id=campaign_id, email=email)
        except (ValidationError, InvalidMessage):
            self.message_user(request, f"{email!r} is not one valid address; nothing was sent.", messages.ERROR)
        except SmtpUnavailable as exc:
            self.message_user(request, f"The mail server is unavailable: {exc}", messages.ERROR)
        else:
            level = messages.SUCCESS if 200 <= reply.code < 300 else messages.WARNING
            self.message_user(request, f"Test mail to {email}: {reply.code} {reply.text}", level)
        return self._back(campaign_id)

    def retry_failed_view(self, request: HttpRequest, campaign_id: int) -> HttpResponseRedirect:
        self._campaign_for_change(request, campaign_id)
        try:
            retried = campaign_retry_failed(campaign_id=campaign_id)
        except IllegalTransition as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, f"Queued {retried} failed recipient(s) again.", messages.SUCCESS)
        return self._back(campaign_id)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_change_permission(request, obj):
            retryable = campaign_retryable_count(campaign_id=obj.pk)
            context["campaign_test_send_url"] = reverse("admin:campaigns_campaign_send_test", args=[obj.pk])
            context["campaign_buttons"] = [
                (reverse(f"admin:campaigns_campaign_{name}", args=[obj.pk]), label, css_class)
                for name, label, css_class, shown in (
                    ("send", "Send", "", obj.status == Campaign.Status.DRAFT),
                    ("pause", "Pause", "", obj.status == Campaign.Status.SENDING),
                    ("resume", "Resume", "", obj.status == Campaign.Status.PAUSED),
                    ("cancel", "Cancel campaign", "danger", obj.status not in TERMINAL_STATUSES),
                    ("retry_failed", f"Retry {retryable} failed", "", retryable > 0),
                )
                if shown
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="progress")
    def progress(self, obj: Campaign) -> str:
        # The label sits beside the bar in the page's text colour: readable at 0.4 % too.
        percent = obj.progress_percent
        estimate = "" if obj.routing_done else " (expected)"
        return format_html(
            '<span class="campaign-progress" title="{} of {} deliveries{}">'
            '<span class="campaign-progress-track"><span class="campaign-progress-fill" style="width:{}%;background:{}">'
            '</span></span><span class="campaign-progress-label">{}% · {} of {}{}</span></span>',
            obj.processed_count,
            obj.progress_total,
            estimate,
            percent,
            "#ba2121" if obj.failed_count else "#417690",
            percent,
            obj.processed_count,
            obj.progress_total,
            estimate,
        )

    @admin.display(description="deliveries")
    def deliveries_by_status(self, obj: Campaign) -> str:
        stats = campaign_delivery_stats(campaign_id=obj.pk)
        return format_html_join(" · ", "{}: {}", stats.items())

    @admin.display(description="latest failures")
    def latest_failures(self, obj: Campaign) -> str:
        rows = campaign_failures(campaign_id=obj.pk)
        if not rows:
            return "none"
        items = format_html_join(
            "",
            "<li>{} — {} {}{}</li>",
            (
                (r["address"], r["smtp_code"] or "", r["smtp_response"], "" if r["retryable"] else " (not retryable)")
                for r in rows
            ),
        )
        return format_html('<ul class="campaign-failures">{}</ul>', items)

    @admin.display(description="preview (first recipient)")
    def preview(self, obj: Campaign) -> str:
        recipient_id = Recipient.objects.order_by("pk").values_list("pk", flat=True).first()
        if recipient_id is None:
            return "no recipients"
        try:
            shown = campaign_preview(campaign_id=obj.pk, recipient_id=recipient_id)
        except (UnknownRecipient, InvalidMessage) as exc:
            return str(exc)
        headers = format_html_join("", "{}: {}\n", shown.headers)
        return format_html('<pre class="campaign-preview">{}\n{}</pre>', headers, shown.body)

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
