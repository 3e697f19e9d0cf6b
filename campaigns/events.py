"""The events the campaigns app emits (`campaign` and `notification` streams): types and payloads."""

from dataclasses import dataclass

from workers.events import Event
from workers.handling import PermanentError, as_int, payload_int

CAMPAIGN_QUEUED = "campaigns.campaign.queued"
RECIPIENT_BATCH_SELECTED = "campaigns.recipient_batch.selected"
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


@dataclass(frozen=True)
class RecipientBatchSelected:
    campaign_id: int
    recipient_ids: list[int]

    def event(self) -> Event:
        """Keyed by the campaign and the batch's first recipient: a fan-out resumed after a
        crash publishes a batch it had already published with the same id."""
        payload = {"campaign_id": self.campaign_id, "recipient_ids": self.recipient_ids}
        return Event.keyed(RECIPIENT_BATCH_SELECTED, f"{self.campaign_id}:{self.recipient_ids[0]}", payload)

    @classmethod
    def from_event(cls, event: Event) -> "RecipientBatchSelected":
        ids = event.payload.get("recipient_ids")
        if not isinstance(event.payload.get("campaign_id"), int) or not isinstance(ids, list):
            raise PermanentError(f"not a recipient batch: {event.payload!r}")
        return cls(
            campaign_id=payload_int(event.payload, "campaign_id"),
            recipient_ids=[as_int(i, "recipient id") for i in ids],
        )
