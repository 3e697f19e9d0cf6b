"""The campaign side of the delivery ledger (notifications.campaign_hooks.CampaignHooks):
what the ledger needs to know about a campaign, and the counters it feeds. Named by
settings.DELIVERY_CAMPAIGN_HOOKS, so notifications never imports campaigns."""

from django.db.models import F

from workers.handling import PermanentError

from .models import Campaign
from .services import campaign_complete_if_done, campaign_counters_add, campaign_transition
from .states import RETRY_FAILED


def campaign_route_channels(*, campaign_id: int) -> list[str] | None:
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).values_list("status", "channels").first()
    if campaign is None:
        raise PermanentError(f"campaign {campaign_id} does not exist")
    status, channels = campaign
    return list(channels) if status == Campaign.Status.SENDING else None


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


# The ledger's counts and "maybe done" are the campaign's own counter and completion services.
campaign_deliveries_counted = campaign_counters_add
campaign_deliveries_settled = campaign_complete_if_done


def campaign_failed_retry(*, campaign_id: int, failed: int) -> bool:
    """The `retry_failed` transition, its failed counter down by `failed` in the same UPDATE."""
    return campaign_transition(
        campaign_id=campaign_id, transition=RETRY_FAILED, failed_count=F("failed_count") - failed, finished_at=None
    )
