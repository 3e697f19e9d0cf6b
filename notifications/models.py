from django.db import models
from django.db.models.functions import Lower


class NotificationMessage(models.Model):
    """A seed-001 notification message, stored by the `notifications` consumer."""

    event_id = models.UUIDField(unique=True, help_text="envelope id; makes redelivery harmless")
    message_id = models.BigIntegerField(db_index=True, help_text="the seed's integer id")
    description = models.TextField()
    timestamp = models.DateTimeField(help_text="when the producer accepted it")
    stream_id = models.CharField(max_length=40, help_text="entry id in NotificationStream")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [models.Index(fields=["-timestamp", "-id"], name="notifmsg_newest_first")]

    def __str__(self) -> str:
        return f"#{self.message_id} {self.description[:60]}"


class Delivery(models.Model):
    """The delivery ledger: one message to one recipient on one channel, and its fate.

    Unique per (campaign, recipient, channel) for campaign mail and per `dedupe_key`
    for anything else (`notification_send`), so a redelivered stream entry can never
    create a second row, and a row leaves `pending`/`deferred` for `sending` only
    through a conditional update: each row is sent by one sender at a time. The claim
    writes a fresh `claim_token`, and every later UPDATE of that sender (lease renewal,
    outcome) matches `status=sending AND claim_token=<its token>`, so a sender whose lease
    expired and whose rows were re-claimed changes nothing.
    """

    class Channel(models.TextChoices):
        EMAIL = "email"
        SMS = "sms"
        PUSH = "push"

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting in an email-notification entry
        SENDING = "sending"  # claimed by a sender (lease: EMAIL_SENDING_LEASE_S)
        DEFERRED = "deferred"  # a 4xx reply or an outage; retried at next_attempt_at
        SENT = "sent"
        FAILED = "failed"  # a 5xx reply, or attempts used up
        SKIPPED = "skipped"  # no address, or the recipient opted out
        NOT_CONFIGURED = "not_configured"  # a channel this platform has no provider for
        CANCELLED = "cancelled"  # its campaign was cancelled before it was sent
        BOUNCED = "bounced"  # sent, then a bounce came back (a DSN or the bounce webhook)

    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    recipient = models.ForeignKey(
        "users.Recipient", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    address = models.CharField(max_length=254, blank=True, help_text="email address (or number) at fan-out time")
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, help_text="caller's key for non-campaign mail")
    # Content for non-campaign messages; campaign mail is rendered from its campaign.
    subject = models.CharField(max_length=998, blank=True)
    body = models.TextField(blank=True)
    from_email = models.CharField(max_length=254, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=200, blank=True, help_text="why it was skipped / not configured")
    attempts = models.PositiveSmallIntegerField(default=0)
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    smtp_response = models.TextField(blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="start (or last renewal) of the lease")
    claim_token = models.UUIDField(
        null=True, blank=True, help_text="the claim holding the row; every outcome UPDATE is fenced by it"
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "delivery (ledger row)"
        verbose_name_plural = "deliveries (ledger)"
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "recipient", "channel"],
                condition=models.Q(campaign__isnull=False),
                name="delivery_unique_per_campaign_recipient_channel",
            ),
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=models.Q(dedupe_key__isnull=False),
                name="delivery_unique_dedupe_key",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"], name="delivery_campaign_status"),
            # Bounces name the original Message-ID (notifications.bounces).
            models.Index(fields=["message_id"], name="delivery_message_id"),
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=models.Q(status__in=["deferred", "sending"]),
                name="delivery_retry_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} → {self.address or self.recipient_id} ({self.status})"


class Suppression(models.Model):
    """An address no campaign mail goes to: it bounced hard, complained, unsubscribed, or an
    operator added it. Unique case-insensitively (the services store it lower-cased; the
    constraint holds whatever writes it). The router and the sender's claim skip these
    addresses; transactional mail (`notification_send`) skips all but unsubscribes
    (notifications.suppression has the rule)."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce"
        COMPLAINT = "complaint"
        UNSUBSCRIBE = "unsubscribe"
        MANUAL = "manual"

    address = models.CharField(max_length=254)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    source = models.CharField(max_length=200, blank=True, help_text="what suppressed it: smtp, dsn, webhook, a link")
    detail = models.TextField(blank=True, help_text="the server's reply or the bounce's diagnostic")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(Lower("address"), name="suppression_unique_address_ci")]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"
