from workers.events import Event
from workers.handling import handles

from .events import CAMPAIGN_QUEUED, CampaignQueued
from .services import campaign_fanout


@handles(CAMPAIGN_QUEUED)
def handle_campaign_queued(event: Event) -> None:
    """campaign / campaign: fan the campaign out to `notification` in recipient batches."""
    campaign_fanout(campaign_id=CampaignQueued.from_event(event).campaign_id)
