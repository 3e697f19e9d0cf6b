from workers.events import Event
from workers.runner import PermanentError

from .services import CAMPAIGN_QUEUED, campaign_fanout


def handle_campaign_queued(event: Event) -> None:
    """campaign / campaign: fan the campaign out to `notification` in recipient batches."""
    if event.type != CAMPAIGN_QUEUED or not isinstance(event.payload.get("campaign_id"), int):
        raise PermanentError(f"not a queued campaign: {event.type} {event.payload!r}")
    campaign_fanout(campaign_id=event.payload["campaign_id"])
