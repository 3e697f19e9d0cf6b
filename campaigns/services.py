"""Campaign writes: create/queue/cancel, the fan-out, and the live counters.

Pipeline (stream names from seed 002):
  campaign_create ──campaign──▶ campaign-fanout ──notification──▶ notification-router
      ──email-notification──▶ email-sender ──SMTP──▶ mail server
An entry on `notification` carries a batch of recipient ids (CAMPAIGN_FANOUT_CHUNK), an
entry on `email-notification` a batch of delivery ids (EMAIL_BATCH_SIZE): 100,000
recipients are ~100 + ~500 entries instead of 200,000, and every consumer works in
set-based SQL.
"""

import logging
import secrets
import string
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.services import deliveries_cancel_unsent, deliveries_requeue_pending, deliveries_retry_failed
from notifications.templating import compile_template
from users.selectors import recipient_count, recipient_id_chunk
from workers.connection import get_redis
from workers.events import Event
from workers.publish import publish_on_commit

from .events import CampaignQueued, RecipientBatchSelected
from .models import Campaign
from .states import (
    CANCEL,
    COMPLETE,
    COMPLETE_WITH_FAILURES,
    EDITABLE_STATUSES,
    PAUSE,
    RESUME,
    RETRY_FAILED,
    SCHEDULE,
    SEND,
    START,
    START_DUE,
    IllegalTransition,
    Transition,
)

logger = logging.getLogger(__name__)

_SEED_NAME_ALPHABET = string.ascii_uppercase + string.digits


def _queued_event(campaign: Campaign) -> Event:
    return CampaignQueued(campaign_id=campaign.pk, name=campaign.name).event()


@transaction.atomic
def campaign_create(
    *,
    name: str,
    subject: str,
    body: str,
    html_body: str = "",
    from_email: str | None = None,
    channels: list[str] | None = None,
    send: bool = True,
    send_at: datetime | None = None,
    created_by=None,
) -> Campaign:
    """Create a campaign; with `send` it is queued and the `campaign` event leaves after
    commit, or, with `send_at` too, it is `scheduled` and the campaign-scheduler starts it then.

    Raises notifications.templating.TemplateError for an unknown `{{ field }}`.
    """
    compile_template(subject)
    compile_template(body)
    if send and send_at is not None:
        status = Campaign.Status.SCHEDULED
    else:
        status = Campaign.Status.QUEUED if send else Campaign.Status.DRAFT
    compile_template(html_body)
    campaign = Campaign.objects.create(
        name=name,
        subject=subject,
        body=body,
        html_body=html_body,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        channels=channels or ["email"],
        status=status,
        send_at=send_at,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    if status == Campaign.Status.QUEUED:
        publish_on_commit("campaign", _queued_event(campaign))
    return campaign


def campaign_seed_create(*, created_by=None) -> Campaign:
    """Seed 002's `GET /api/v1/campaign/create`: `Campaign XXXXX`, subject `New Campaign`.

    The seed put the campaign name in the subject and "New Campaign" in the body; the
    intended mail (subject `New Campaign`, body naming the campaign) is sent instead.
    """
    name = "Campaign " + "".join(secrets.choice(_SEED_NAME_ALPHABET) for _ in range(5))
    return campaign_create(
        name=name,
        subject="New Campaign",
        body=f"Hello {{{{ name }}}} {{{{ lastName }}}},\n\nWe are happy to announce {name}.\n",
        created_by=created_by,
    )


def campaign_transition(*, campaign_id: int, transition: Transition, where: Q | None = None, **changes) -> bool:
    """The one way a campaign's status changes (campaigns.states has the table).

    One conditional UPDATE: the row changes only if its status is one of the
    transition's sources (and it matches `where`), so a concurrent transition that
    committed first is seen, never overwritten. `changes` are other fields set in the
    same UPDATE. Returns whether the campaign moved.
    """
    rows = Campaign.objects.filter(pk=campaign_id, status__in=transition.sources)
    if where is not None:
        rows = rows.filter(where)
    return bool(rows.update(status=transition.target, **changes))


def campaign_transition_or_raise(*, campaign_id: int, transition: Transition, **changes) -> None:
    """`campaign_transition` for a caller's request: IllegalTransition if the status forbids it."""
    if not campaign_transition(campaign_id=campaign_id, transition=transition, **changes):
        raise _illegal(campaign_id, transition)


def _illegal(campaign_id: int, transition: Transition) -> IllegalTransition:
    current = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
    return IllegalTransition(campaign_id=campaign_id, transition=transition, current=current)


@transaction.atomic
def campaign_queue(*, campaign_id: int) -> None:
    """A draft starts sending. Raises IllegalTransition if it is not a draft."""
    campaign_transition_or_raise(campaign_id=campaign_id, transition=SEND)
    publish_on_commit("campaign", _queued_event(Campaign(pk=campaign_id)))


def campaign_update(
    *, campaign_id: int, subject: str | None = None, body: str | None = None, send_at: datetime | None = None
) -> None:
    """Change what a draft or scheduled campaign will send, or when; one conditional UPDATE,
    so a campaign the scheduler started meanwhile is left as it is (IllegalTransition).
    Raises notifications.templating.TemplateError for an unknown `{{ field }}`."""
    changes: dict[str, object] = {}
    for field, value in (("subject", subject), ("body", body)):
        if value is not None:
            compile_template(value)
            changes[field] = value
    if send_at is not None:
        changes["send_at"] = send_at
    if not changes:
        return
    if not Campaign.objects.filter(pk=campaign_id, status__in=EDITABLE_STATUSES).update(**changes):
        raise _illegal(campaign_id, _EDIT)


# Not a status change: the table's shape names the statuses an edit is allowed in.
_EDIT = Transition("edit", EDITABLE_STATUSES, Campaign.Status.DRAFT)


def campaign_schedule(*, campaign_id: int, send_at: datetime) -> None:
    """A draft (or a scheduled campaign, moved) starts at `send_at`."""
    campaign_transition_or_raise(campaign_id=campaign_id, transition=SCHEDULE, send_at=send_at)


def campaigns_start_due(*, now: datetime | None = None) -> int:
    """The campaign-scheduler tick: every scheduled campaign whose `send_at` has come is
    queued (one conditional UPDATE each, so two schedulers start it once) and its
    `campaign` event leaves after that commit. Returns how many started."""
    now = now or timezone.now()
    started = 0
    due = Campaign.objects.filter(status=Campaign.Status.SCHEDULED, send_at__lte=now).order_by("send_at", "pk")
    for campaign_id in due.values_list("pk", flat=True)[:100]:
        with transaction.atomic():
            if campaign_transition(campaign_id=campaign_id, transition=START_DUE, where=Q(send_at__lte=now)):
                publish_on_commit("campaign", _queued_event(Campaign(pk=campaign_id)))
                started += 1
    if started:
        logger.info("campaign-scheduler: %d scheduled campaign(s) started", started)
    return started


def campaign_pause(*, campaign_id: int, reason: str = "paused by an operator") -> None:
    """Stop a sending campaign where it is. The fan-out checks the status per batch and the
    senders claim a campaign's rows only while it is sending, so nothing more leaves within
    one batch per sender thread; unsent rows stay `pending`. Raises IllegalTransition."""
    campaign_transition_or_raise(campaign_id=campaign_id, transition=PAUSE, paused_reason=reason[:500])


def send_errors_key(campaign_id: int) -> str:
    """The Redis key of a campaign's consecutive send errors (hash-tagged: one slot)."""
    return f"{{campaign-send-errors:{campaign_id}}}"


@transaction.atomic
def campaign_resume(*, campaign_id: int) -> int:
    """A paused campaign sends again from where it stopped: the fan-out resumes from its
    cursor (the `campaign` event again) and its `pending` rows go back onto
    `email-notification` (a row still in an entry is claimed once: claims are conditional).
    Returns how many deliveries were re-queued. Raises IllegalTransition."""
    campaign_transition_or_raise(campaign_id=campaign_id, transition=RESUME, paused_reason="")
    publish_on_commit("campaign", _queued_event(Campaign(pk=campaign_id)))
    transaction.on_commit(lambda: get_redis().delete(send_errors_key(campaign_id)))
    transaction.on_commit(lambda: campaign_complete_if_done(campaign_id=campaign_id))
    return deliveries_requeue_pending(campaign_id=campaign_id)


@transaction.atomic
def campaign_cancel(*, campaign_id: int) -> None:
    """Stop a campaign. Every stage checks the status per batch, so sending stops within
    one batch per sender thread; deliveries not yet sent become `cancelled`.
    Raises IllegalTransition if it has already finished."""
    campaign_transition_or_raise(campaign_id=campaign_id, transition=CANCEL, finished_at=timezone.now())
    deliveries_cancel_unsent(campaign_id=campaign_id)


def campaign_fanout(*, campaign_id: int) -> int:
    """Publish the campaign's recipients to `notification` in batches; return how many.

    Resumable: each batch is published (outbox) in the same transaction that moves
    `fanout_cursor`, so a crash resumes after the last published batch, and a batch's
    event id is derived from its first recipient, so a replay is deduplicated by the
    router's inbox. Only ids are read, CAMPAIGN_FANOUT_CHUNK at a time.
    """
    channels = Campaign.objects.filter(pk=campaign_id).values_list("channels", flat=True).first() or []
    started = campaign_transition(
        campaign_id=campaign_id,
        transition=START,
        started_at=timezone.now(),
        deliveries_expected=recipient_count() * len(channels),
    )
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        logger.warning("fan-out: campaign %s does not exist", campaign_id)
        return 0
    if campaign.status != Campaign.Status.SENDING or campaign.fanout_done_at is not None:
        return 0
    if started:
        logger.info("campaign %s (%s): fan-out started", campaign.pk, campaign.name)
    chunk = settings.CAMPAIGN_FANOUT_CHUNK
    cursor = campaign.fanout_cursor
    published = 0
    while True:
        ids = recipient_id_chunk(after_id=cursor, size=chunk)
        with transaction.atomic():
            # No row lock: the senders update this row's counters all the time. A cancel
            # that lands after this check is caught by the router and the senders.
            if not Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).exists():
                return published  # cancelled meanwhile
            if not ids:
                Campaign.objects.filter(pk=campaign_id).update(fanout_done_at=timezone.now())
                transaction.on_commit(lambda: campaign_complete_if_done(campaign_id=campaign_id))
                break
            publish_on_commit(
                "notification",
                RecipientBatchSelected(campaign_id=campaign_id, recipient_ids=ids).event(),
            )
            Campaign.objects.filter(pk=campaign_id).update(
                fanout_cursor=ids[-1], batches_published=F("batches_published") + 1
            )
        cursor = ids[-1]
        published += len(ids)
    logger.info("campaign %s: fan-out done, %d recipients in this run", campaign_id, published)
    return published


def campaign_counters_add(
    *,
    campaign_id: int,
    recipients: int = 0,
    sent: int = 0,
    failed: int = 0,
    skipped: int = 0,
    batches_routed: int = 0,
) -> None:
    """Add to the live counters (one UPDATE; call it in the transaction that changed the ledger)."""
    changes = {
        field: F(field) + amount
        for field, amount in (
            ("recipients_count", recipients),
            ("sent_count", sent),
            ("failed_count", failed),
            ("skipped_count", skipped),
            ("batches_routed", batches_routed),
        )
        if amount
    }
    if changes:
        Campaign.objects.filter(pk=campaign_id).update(**changes)


def campaign_complete_if_done(*, campaign_id: int) -> bool:
    """`sending` → `completed`/`completed_with_failures` once every batch was routed and
    every delivery reached a final state (conditional updates: no check-then-act)."""
    done = Q(
        fanout_done_at__isnull=False,
        batches_routed__gte=F("batches_published"),
        recipients_count__lte=F("sent_count") + F("failed_count") + F("skipped_count"),
    )
    now = timezone.now()
    return campaign_transition(
        campaign_id=campaign_id, transition=COMPLETE, where=done & Q(failed_count=0), finished_at=now
    ) or campaign_transition(
        campaign_id=campaign_id,
        transition=COMPLETE_WITH_FAILURES,
        where=done & Q(failed_count__gt=0),
        finished_at=now,
    )


@transaction.atomic
def campaign_retry_failed(*, campaign_id: int) -> int:
    """Send again to this campaign's failed recipients only; return how many.

    Raises IllegalTransition unless the campaign is sending or completed with failures
    (a cancelled or completed campaign is never revived); then nothing changes.
    """
    retried = deliveries_retry_failed(campaign_id=campaign_id)
    if not retried and not Campaign.objects.filter(pk=campaign_id, status__in=RETRY_FAILED.sources).exists():
        raise _illegal(campaign_id, RETRY_FAILED)
    return retried


def campaigns_redrive_stuck(*, stuck_for_s: float) -> int:
    """Re-drive campaigns whose pipeline stopped for `stuck_for_s` (Redis lost its entries);
    return how many were re-driven. Every step is safe to repeat:

    - `queued` since before the cutoff, or `sending` with its fan-out unfinished since it
      started before the cutoff: the `campaign` event again, with its original id; the
      fan-out resumes from `fanout_cursor` (and does nothing once it is done);
    - fan-out done before the cutoff but fewer batches routed than published: the recipient
      batches up to the cursor again, with their original ids (derived from each batch's
      first recipient): the router's inbox drops those it applied;
    - then the completion check, a conditional update.
    Emails still `pending` are notifications.services.deliveries_redrive_stuck's (the
    delivery ledger is unique per campaign, recipient and channel: no second mail).
    """
    cutoff = timezone.now() - timedelta(seconds=stuck_for_s)
    Status = Campaign.Status
    redriven = 0
    for campaign in Campaign.objects.filter(
        Q(status=Status.QUEUED, created_at__lt=cutoff)
        | Q(status=Status.SENDING, fanout_done_at__isnull=True, started_at__lt=cutoff)
    ).order_by("pk"):
        with transaction.atomic():
            publish_on_commit("campaign", _queued_event(campaign))
        logger.warning("campaign %s (%s): fan-out re-driven", campaign.pk, campaign.status)
        redriven += 1
    behind = Campaign.objects.filter(
        status=Status.SENDING, fanout_done_at__lt=cutoff, batches_routed__lt=F("batches_published")
    ).order_by("pk")
    for campaign in behind:
        batches = _recipient_batch_events(campaign_id=campaign.pk, upto=campaign.fanout_cursor)
        with transaction.atomic():
            publish_on_commit("notification", batches)
        logger.warning("campaign %s: %d recipient batches re-driven", campaign.pk, len(batches))
        redriven += 1
    for campaign_id in Campaign.objects.filter(status=Status.SENDING, fanout_done_at__lt=cutoff).values_list(
        "pk", flat=True
    ):
        campaign_complete_if_done(campaign_id=campaign_id)
    return redriven


def _recipient_batch_events(*, campaign_id: int, upto: int) -> list[Event]:
    """The recipient batches campaign_fanout published up to `upto`, ids included."""
    events = []
    cursor = 0
    while ids := [pk for pk in recipient_id_chunk(after_id=cursor, size=settings.CAMPAIGN_FANOUT_CHUNK) if pk <= upto]:
        events.append(RecipientBatchSelected(campaign_id=campaign_id, recipient_ids=ids).event())
        cursor = ids[-1]
    return events
