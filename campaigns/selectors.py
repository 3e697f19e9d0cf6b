from django.db.models import QuerySet

from .models import Campaign


def campaign_list(*, status: str | None = None) -> QuerySet[Campaign]:
    campaigns = Campaign.objects.order_by("-id")
    if status:
        campaigns = campaigns.filter(status=status)
    return campaigns


def campaign_get(*, campaign_id: int) -> Campaign | None:
    return Campaign.objects.filter(pk=campaign_id).first()
