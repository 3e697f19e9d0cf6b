from django.conf import settings
from django.db import models


class Campaign(models.Model):
    """An email to every recipient. Counters count deliveries (one per recipient and
    channel); they are updated in the same transactions as the delivery ledger."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        SCHEDULED = "scheduled"  # waits for send_at (the campaign-scheduler loop)
        QUEUED = "queued"
        SENDING = "sending"
        PAUSED = "paused"  # by an operator, or after EMAIL_MAX_SEND_ERRORS errors in a row
        COMPLETED = "completed"
        COMPLETED_WITH_FAILURES = "completed_with_failures"
        CANCELLED = "cancelled"

    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=998, help_text="may use {{ field }} placeholders")
    body = models.TextField(help_text="plain text; {{ username }}, {{ name }}, {{ lastName }}, … are filled in")
    html_body = models.TextField(
        blank=True, help_text="optional HTML part; recipient fields are HTML-escaped; empty: text only"
    )
    from_email = models.EmailField(max_length=254)
    channels = models.JSONField(
        default=list, help_text='e.g. ["email"]; "sms" and "push" are recorded as not configured'
    )
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.QUEUED, db_index=True)
    send_at = models.DateTimeField(null=True, blank=True, help_text="a scheduled campaign starts then")
    paused_reason = models.CharField(max_length=500, blank=True, help_text="why it was paused")
    recipients_count = models.PositiveIntegerField(default=0)
    sent_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    # Of skipped_count: recipients whose address unsubscribed. Of sent_count: mails that
    # bounced after the server accepted them (a DSN or the bounce webhook).
    unsubscribed_count = models.PositiveIntegerField(default=0)
    bounced_count = models.PositiveIntegerField(default=0)
    # The progress denominator while fan-out runs (recipients_count only counts the batches
    # routed so far): recipients × channels when fan-out started.
    deliveries_expected = models.PositiveIntegerField(null=True, blank=True)
    # Fan-out bookkeeping: where it stopped (resume after a crash) and how many
    # recipient batches it published / the router has applied.
    fanout_cursor = models.BigIntegerField(default=0)
    batches_published = models.PositiveIntegerField(default=0)
    batches_routed = models.PositiveIntegerField(default=0)
    fanout_done_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def processed_count(self) -> int:
        return self.sent_count + self.failed_count + self.skipped_count

    @property
    def routing_done(self) -> bool:
        return self.fanout_done_at is not None and self.batches_routed >= self.batches_published

    @property
    def progress_total(self) -> int:
        """Deliveries to make: exact once every batch is routed; before that the count
        expected when fan-out started, so the percentage never goes backwards."""
        if self.routing_done:
            return self.recipients_count
        return max(self.deliveries_expected or 0, self.recipients_count)

    @property
    def progress_percent(self) -> float:
        total = self.progress_total
        if not total:
            return 100.0 if self.status in TERMINAL_STATUSES else 0.0
        return min(100.0, round(100 * self.processed_count / total, 1))


TERMINAL_STATUSES = (
    Campaign.Status.COMPLETED,
    Campaign.Status.COMPLETED_WITH_FAILURES,
    Campaign.Status.CANCELLED,
)
