"""The events the campaigns app emits (`campaign` and `notification` streams): types and payloads."""

from dataclasses import dataclass

# The recipient batches are the ledger's input: their contract is notifications'.
from notifications.events import RECIPIENT_BATCH_SELECTED, RecipientBatchSelected
from workers.events import Event
from workers.handling import PermanentError

CAMPAIGN_QUEUED = "campaigns.campaign.queued"
EVENT_TYPES = (CAMPAIGN_QUEUED, RECIPIENT_BATCH_SELECTED)


@dataclass(frozen=True)
class CampaignQueued:
    campaign_id: int
    name: str

    def event(self) -> Event:
        """Keyed by the campaign: a re-drive publishes it with the same id. (The `:0` keeps
        the ids of entries and inbox rows written before the key lost its attempt part.)"""
        return Event.keyed(
            CAMPAIGN_QUEUED, f"{self.campaign_id}:0", {"campaign_id": self.campaign_id, "name": self.name}
        )

    @classmethod
    def from_event(cls, event: Event) -> "CampaignQueued":
        if not isinstance(event.payload.get("campaign_id"), int):
            raise PermanentError(f"not a queued campaign: {event.payload!r}")
        return cls(campaign_id=event.payload["campaign_id"], name=str(event.payload.get("name", "")))


__all__ = ["CAMPAIGN_QUEUED", "EVENT_TYPES", "RECIPIENT_BATCH_SELECTED", "CampaignQueued", "RecipientBatchSelected"]
