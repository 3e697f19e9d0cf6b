"""The campaign side of the delivery ledger (notifications.campaign_hooks.CampaignHooks):
what the ledger needs to know about a campaign, and the counters it feeds. Named by
settings.DELIVERY_CAMPAIGN_HOOKS, so notifications never imports campaigns."""

import logging

from django.conf import settings
from django.db.models import F

from workers.connection import get_redis
from workers.handling import PermanentError

from .models import Campaign
from .services import (
    campaign_complete_if_done,
    campaign_counters_add,
    campaign_pause,
    campaign_transition,
    send_errors_key,
)
from .states import RETRY_FAILED, IllegalTransition

logger = logging.getLogger(__name__)

# A paused campaign's recipient batches are still routed (their rows wait `pending`).
_TAKES_DELIVERIES = (Campaign.Status.SENDING, Campaign.Status.PAUSED)


def campaign_route_channels(*, campaign_id: int) -> list[str] | None:
    # No row lock here: the router holds the row only at the end (campaign_batch_routed).
    campaign = Campaign.objects.filter(pk=campaign_id).values_list("status", "channels").first()
    if campaign is None:
        raise PermanentError(f"campaign {campaign_id} does not exist")
    status, channels = campaign
    return list(channels) if status in _TAKES_DELIVERIES else None


def campaign_batch_routed(*, campaign_id: int, recipients: int, skipped: int) -> bool:
    campaign_counters_add(campaign_id=campaign_id, recipients=recipients, skipped=skipped, batches_routed=1)
    # The UPDATE above holds the row until commit: a cancel is either before it (seen
    # here) or after the commit (it then cancels these rows with the rest).
    return Campaign.objects.filter(pk=campaign_id, status__in=_TAKES_DELIVERIES).exists()


def campaign_send_outcomes(*, campaign_id: int, errors: int, last_ok: bool) -> None:
    limit = settings.EMAIL_MAX_SEND_ERRORS
    if limit <= 0:
        return
    key = send_errors_key(campaign_id)
    client = get_redis()
    if last_ok:
        in_a_row = errors
        client.set(key, errors, ex=86400)
    elif errors:
        pipe = client.pipeline()
        pipe.incrby(key, errors)
        pipe.expire(key, 86400)
        in_a_row = pipe.execute()[0]
    else:
        return
    if in_a_row >= limit:
        try:
            campaign_pause(
                campaign_id=campaign_id,
                reason=f"paused automatically after {in_a_row} send errors in a row (EMAIL_MAX_SEND_ERRORS={limit})",
            )
        except IllegalTransition:
            return  # paused, cancelled or finished already
        client.delete(key)
        logger.warning("campaign %s paused after %d send errors in a row", campaign_id, in_a_row)


def campaign_ids_sending(*, campaign_ids: set[int]) -> set[int]:
    if not campaign_ids:
        return set()
    return set(
        Campaign.objects.filter(pk__in=campaign_ids, status=Campaign.Status.SENDING).values_list("pk", flat=True)
    )


def campaign_templates(*, campaign_ids: set[int]) -> dict[int, tuple[str, str, str]]:
    return {
        pk: (subject, body, from_email)
        for pk, subject, body, from_email in Campaign.objects.filter(pk__in=campaign_ids).values_list(
            "pk", "subject", "body", "from_email"
        )
    }


def campaign_html_templates(*, campaign_ids: set[int]) -> dict[int, str]:
    if not campaign_ids:
        return {}
    return dict(Campaign.objects.filter(pk__in=campaign_ids).exclude(html_body="").values_list("pk", "html_body"))


def campaign_consent_counted(*, campaign_id: int, unsubscribed: int = 0, bounced: int = 0) -> None:
    changes = {
        field: F(field) + amount
        for field, amount in (("unsubscribed_count", unsubscribed), ("bounced_count", bounced))
        if amount
    }
    if changes:
        Campaign.objects.filter(pk=campaign_id).update(**changes)


# The ledger's counts are the campaign's own counter service.
campaign_deliveries_counted = campaign_counters_add


def campaign_deliveries_settled(*, campaign_id: int) -> None:
    """After every sender chunk: the completion check, behind a plain read of the same
    condition. The two conditional UPDATEs of campaign_complete_if_done wait on the row
    lock the other senders' counters hold; the read does not. Called after the caller's
    commit, so whichever commit brings the last delivery to a final state sees it done."""
    if Campaign.objects.filter(
        pk=campaign_id,
        status=Campaign.Status.SENDING,
        fanout_done_at__isnull=False,
        batches_routed__gte=F("batches_published"),
        recipients_count__lte=F("sent_count") + F("failed_count") + F("skipped_count"),
    ).exists():
        campaign_complete_if_done(campaign_id=campaign_id)


def campaign_failed_retry(*, campaign_id: int, failed: int) -> bool:
    """The `retry_failed` transition, its failed counter down by `failed` in the same UPDATE."""
    return campaign_transition(
        campaign_id=campaign_id, transition=RETRY_FAILED, failed_count=F("failed_count") - failed, finished_at=None
    )
