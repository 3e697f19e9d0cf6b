"""The delivery ledger: one row per message, recipient and channel, and what became of it.

Campaign mail is routed here in recipient batches (`deliveries_route`), other apps send
one message with `notification_send`; both queue email batches for the sender
(notifications.sending). Campaign status and counters are the campaign owner's, reached
through notifications.campaign_hooks.
"""

import logging
import uuid
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.campaign_hooks import campaign_hooks
from notifications.events import EmailBatchQueued
from notifications.models import Delivery
from notifications.suppression import (
    UNSUBSCRIBED,
    normalize_address,
    suppressed_addresses,
    suppression_skip_reason,
)
from users.models import Recipient
from workers.events import Event
from workers.publish import publish_on_commit

logger = logging.getLogger(__name__)

_DELIVERY_NAMESPACE = uuid.UUID("0c7a3f0e-2a8e-4b1f-a8e5-1d3f6c9b0002")


def message_id_for(*, campaign_id: int | None, recipient_id: int | None, dedupe_key: str | None = None) -> str:
    """The deterministic Message-ID of a delivery: the same for every attempt, so a mail
    sent twice after a crash is recognisable as one message by the receiving side."""
    domain = settings.EMAIL_MESSAGE_ID_DOMAIN
    if campaign_id is not None:
        return f"<campaign-{campaign_id}.recipient-{recipient_id}@{domain}>"
    return f"<notification-{uuid.uuid5(_DELIVERY_NAMESPACE, str(dedupe_key))}@{domain}>"


def _email_batch_events(delivery_ids: list[int]) -> list[Event]:
    size = settings.EMAIL_BATCH_SIZE
    events = []
    for start in range(0, len(delivery_ids), size):
        batch = delivery_ids[start : start + size]
        events.append(EmailBatchQueued(delivery_ids=batch).event())
    return events


def deliveries_route(*, campaign_id: int, recipient_ids: list[int]) -> int:
    """notification-router: one ledger row per (recipient, channel) of a recipient batch.

    Opted-out recipients, those without an email and those whose address is on the
    suppression list (reason `unsubscribed`, or `suppressed: <reason>`) are `skipped`;
    SMS and push are `not_configured`; all are counted as skipped (unsubscribed ones
    also in the campaign's unsubscribed counter). Pending email rows go to
    `email-notification` in batches (outbox, same transaction). Runs inside the
    runner's inbox transaction, so a redelivered batch changes nothing.
    Returns the number of ledger rows created.
    """
    hooks = campaign_hooks()
    channels = hooks.campaign_route_channels(campaign_id=campaign_id)
    if channels is None:  # cancelled (or finished) meanwhile: route nothing
        hooks.campaign_deliveries_counted(campaign_id=campaign_id, batches_routed=1)
        return 0
    already = set(
        Delivery.objects.filter(campaign_id=campaign_id, recipient_id__in=recipient_ids).values_list(
            "recipient_id", flat=True
        )
    )
    rows: list[Delivery] = []
    skipped = 0
    recipients = list(
        Recipient.objects.filter(pk__in=recipient_ids).values_list("pk", "email", "opted_out", "mobile", "device_id")
    )
    suppressed = (
        suppressed_addresses(email for pk, email, *_ in recipients if pk not in already)
        if Delivery.Channel.EMAIL in channels
        else {}
    )
    unsubscribed = 0
    for pk, email, opted_out, mobile, device_id in recipients:
        if pk in already:
            continue
        for channel in channels:
            row = Delivery(campaign_id=campaign_id, recipient_id=pk, channel=channel)
            if channel == Delivery.Channel.EMAIL:
                row.address = email or ""
                if opted_out:
                    row.status, row.reason = Delivery.Status.SKIPPED, "recipient opted out"
                elif not email:
                    row.status, row.reason = Delivery.Status.SKIPPED, "no email address"
                elif (why := suppression_skip_reason(reason=suppressed.get(email.lower()), campaign=True)) is not None:
                    row.status, row.reason = Delivery.Status.SKIPPED, why
                    unsubscribed += why == UNSUBSCRIBED
                else:
                    row.message_id = message_id_for(campaign_id=campaign_id, recipient_id=pk)
            else:
                row.address = (mobile if channel == Delivery.Channel.SMS else device_id) or ""
                row.status = Delivery.Status.NOT_CONFIGURED
                row.reason = f"no {channel} provider is configured"
            if row.status != Delivery.Status.PENDING:
                skipped += 1
            rows.append(row)
    Delivery.objects.bulk_create(rows, batch_size=2000)
    # The campaign row is locked only now, for the rest of this transaction (not for the
    # whole batch: the senders count on the same row). Cancelled meanwhile → the batch's
    # new rows are cancelled too, and nothing is queued.
    if not hooks.campaign_batch_routed(campaign_id=campaign_id, recipients=len(rows), skipped=skipped):
        Delivery.objects.filter(
            campaign_id=campaign_id, recipient_id__in=recipient_ids, status=Delivery.Status.PENDING
        ).update(status=Delivery.Status.CANCELLED)
        return len(rows)
    pending = list(
        Delivery.objects.filter(
            campaign_id=campaign_id,
            recipient_id__in=recipient_ids,
            channel=Delivery.Channel.EMAIL,
            status=Delivery.Status.PENDING,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    publish_on_commit("email", _email_batch_events(pending))
    if unsubscribed:
        hooks.campaign_consent_counted(campaign_id=campaign_id, unsubscribed=unsubscribed)
    transaction.on_commit(lambda: hooks.campaign_deliveries_settled(campaign_id=campaign_id))
    return len(rows)


@transaction.atomic
def notification_send(
    *,
    channel: str = "email",
    subject: str,
    body: str,
    dedupe_key: str,
    recipient: Recipient | None = None,
    email: str | None = None,
    from_email: str | None = None,
) -> Delivery:
    """Send one message to one person through the campaign pipeline; for other apps.

    - `recipient` (a users.Recipient) or `email` (a bare address; wins if both given).
    - `channel`: "email"; "sms"/"push" are recorded as `not_configured` (no provider).
    - `dedupe_key`: your idempotency key, e.g. f"order:{order.id}:confirmation". A second
      call with the same key returns the first Delivery and sends nothing.
    - Call it inside your own `transaction.atomic()`: the email leaves (via the outbox and
      the `email-sender` consumer) only if your transaction commits.
    - Opt-out and unsubscribes apply to campaigns only; an address suppressed for a hard
      bounce, a complaint or by an operator gets no transactional mail either: the row is
      `skipped` (reason `suppressed: <reason>`), here or, if that happens later, when the
      sender claims it (notifications.suppression has the rule).
    Returns the Delivery (the ledger row); its `status` tells what became of it.
    """
    existing = Delivery.objects.filter(dedupe_key=dedupe_key).first()
    if existing is not None:
        return existing
    if channel not in Delivery.Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    address = email or (recipient.email if recipient is not None and channel == "email" else "") or ""
    row = Delivery(
        recipient=recipient,
        channel=channel,
        address=address,
        dedupe_key=dedupe_key,
        subject=subject,
        body=body,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        message_id=message_id_for(campaign_id=None, recipient_id=None, dedupe_key=dedupe_key),
    )
    if channel != Delivery.Channel.EMAIL:
        row.status, row.reason = Delivery.Status.NOT_CONFIGURED, f"no {channel} provider is configured"
    elif not address:
        row.status, row.reason = Delivery.Status.SKIPPED, "no email address"
    elif (
        why := suppression_skip_reason(
            reason=suppressed_addresses([address]).get(normalize_address(address)), campaign=False
        )
    ) is not None:
        row.status, row.reason = Delivery.Status.SKIPPED, why
    Delivery.objects.bulk_create([row], ignore_conflicts=True)  # a concurrent call with the same key
    row = Delivery.objects.get(dedupe_key=dedupe_key)
    if row.status == Delivery.Status.PENDING and row.attempts == 0:
        publish_on_commit("email", _email_batch_events([row.pk]))
    return row


def deliveries_cancel_unsent(*, campaign_id: int) -> int:
    """A cancelled campaign's deliveries not yet sent (pending, deferred) become `cancelled`."""
    return Delivery.objects.filter(
        campaign_id=campaign_id, status__in=[Delivery.Status.PENDING, Delivery.Status.DEFERRED]
    ).update(status=Delivery.Status.CANCELLED, next_attempt_at=None)


# The one rule of which failures are worth sending again: those a 4xx reply left failed
# (attempts used up on a temporary refusal, a timeout or an outage answered 4xx). A 5xx
# (hard bounce) or a message that could not be built (smtp_code NULL: an invalid address)
# fails the same way every time.
RETRYABLE_FAILURE = Q(status=Delivery.Status.FAILED, smtp_code__gte=400, smtp_code__lt=500)


def deliveries_requeue_pending(*, campaign_id: int) -> int:
    """A campaign's `pending` email rows go onto `email-notification` again (after a pause:
    the senders left them where they were). A row also still waiting in an entry is
    claimed once, by whichever entry comes first (the claim is a conditional update)."""
    ids = list(
        Delivery.objects.filter(campaign_id=campaign_id, channel=Delivery.Channel.EMAIL, status=Delivery.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    publish_on_commit("email", _email_batch_events(ids))
    return len(ids)


@transaction.atomic
def deliveries_retry_failed(*, campaign_id: int | None = None, delivery_ids: list[int] | None = None) -> int:
    """Retryable failed email deliveries (RETRYABLE_FAILURE; of a campaign, or the given
    ones) go back to `pending` and are queued again, if their campaign lets them (`campaign_failed_retry`: its
    failed counter drops and it is sending again); those of a campaign that refuses
    (cancelled, completed) are left as they are. Returns how many were queued. A queued
    row whose address was suppressed since it failed is sent nothing: the sender's claim
    skips it and counts it skipped (and unsubscribed), as the router would have."""
    rows = Delivery.objects.select_for_update().filter(RETRYABLE_FAILURE, channel=Delivery.Channel.EMAIL)
    if campaign_id is not None:
        rows = rows.filter(campaign_id=campaign_id)
    if delivery_ids is not None:
        rows = rows.filter(pk__in=delivery_ids)
    # The delivery rows are locked before the campaign row, in the order the senders use.
    found = list(rows.values_list("pk", "campaign_id"))
    per_campaign = Counter(cid for _, cid in found if cid is not None)
    hooks = campaign_hooks()
    refused = {
        cid for cid, count in per_campaign.items() if not hooks.campaign_failed_retry(campaign_id=cid, failed=count)
    }
    ids = [pk for pk, cid in found if cid not in refused]
    if not ids:
        return 0
    Delivery.objects.filter(pk__in=ids).update(
        status=Delivery.Status.PENDING, attempts=0, next_attempt_at=None, claimed_at=None
    )
    publish_on_commit("email", _email_batch_events(ids))
    return len(ids)


def deliveries_requeue_due(*, limit: int = 5000) -> int:
    """Deferred deliveries whose time has come, and deliveries stuck in `sending` past
    their lease (their sender died), go back to `pending` and onto `email-notification`."""
    now = timezone.now()
    lease = timedelta(seconds=settings.EMAIL_SENDING_LEASE_S)
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=Delivery.Status.DEFERRED, next_attempt_at__lte=now)
                | Q(status=Delivery.Status.SENDING, claimed_at__lt=now - lease)
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.PENDING, next_attempt_at=None)
            publish_on_commit("email", _email_batch_events(ids))
    if ids:
        logger.info("re-queued %d deliveries (retry due or sender lease expired)", len(ids))
    return len(ids)


def deliveries_redrive_stuck(*, stuck_for_s: float, limit: int = 5000) -> int:
    """Email deliveries `pending` for `stuck_for_s` go onto `email-notification` again.

    A pending row waits in an entry of that stream; when Redis lost the entry, nothing
    else would ever send it. A copy of an entry that was not lost sends nothing twice: the
    sender claims a row only while it is `pending` (a conditional update). Each row is
    re-driven at most once per `stuck_for_s` (its `next_attempt_at` marks the re-drive).
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=stuck_for_s)
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(channel=Delivery.Channel.EMAIL, status=Delivery.Status.PENDING)
            .filter(Q(next_attempt_at__lt=cutoff) | Q(next_attempt_at__isnull=True, created_at__lt=cutoff))
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
            publish_on_commit("email", _email_batch_events(ids))
    if ids:
        logger.warning("re-drove %d email deliveries pending for over %.0fs", len(ids), stuck_for_s)
    return len(ids)
