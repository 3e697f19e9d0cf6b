from django.db.models import BooleanField, Count, ExpressionWrapper, QuerySet

from notifications.models import Delivery
from notifications.services import RETRYABLE_FAILURE

from .models import Campaign


def campaign_list(*, status: str | None = None) -> QuerySet[Campaign]:
    campaigns = Campaign.objects.order_by("-id")
    if status:
        campaigns = campaigns.filter(status=status)
    return campaigns


def campaign_get(*, campaign_id: int) -> Campaign | None:
    return Campaign.objects.filter(pk=campaign_id).first()


# What a campaign page shows per ledger status (statuses another app adds, such as
# bounced or unsubscribed, appear as soon as the ledger has them).
SHOWN_STATUSES = ("sent", "failed", "bounced", "unsubscribed", "skipped")


def campaign_delivery_stats(*, campaign_id: int) -> dict[str, int]:
    """Deliveries per ledger status, read from the ledger (not the live counters):
    sent / failed / bounced / unsubscribed / skipped always, other statuses when present;
    `not_configured` (a channel without a provider) counts as skipped."""
    counts = dict(
        Delivery.objects.filter(campaign_id=campaign_id)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    stats = {status: counts.pop(status, 0) for status in SHOWN_STATUSES}
    stats["skipped"] += counts.pop(Delivery.Status.NOT_CONFIGURED, 0)
    return {**stats, **counts}


def campaign_failures(*, campaign_id: int, limit: int = 20) -> list[dict]:
    """The latest failed deliveries with the SMTP reply that failed them, and whether
    "retry failed" would send them again (notifications' RETRYABLE_FAILURE)."""
    rows = (
        Delivery.objects.filter(campaign_id=campaign_id, status=Delivery.Status.FAILED)
        .annotate(retryable=ExpressionWrapper(RETRYABLE_FAILURE, output_field=BooleanField()))
        .order_by("-pk")
        .values("pk", "recipient_id", "address", "smtp_code", "smtp_response", "attempts", "retryable")[:limit]
    )
    return list(rows)


def campaign_retryable_count(*, campaign_id: int) -> int:
    return Delivery.objects.filter(RETRYABLE_FAILURE, campaign_id=campaign_id).count()
