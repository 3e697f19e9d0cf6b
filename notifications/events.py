"""The events the notifications app emits (seed 001's messages on `NotificationStream`,
the email batches on `email-notification`), and the one it takes from the app that owns
campaigns: a batch of recipients to route into the ledger (`notification`)."""

from dataclasses import dataclass

from workers.events import Event
from workers.handling import PermanentError, as_int, payload_int

MESSAGE_PUBLISHED = "notifications.message.published"
EMAIL_BATCH_QUEUED = "notifications.email_batch.queued"
EVENT_TYPES = (MESSAGE_PUBLISHED, EMAIL_BATCH_QUEUED)
# Emitted by campaigns (listed in campaigns.events.EVENT_TYPES), routed by the ledger.
RECIPIENT_BATCH_SELECTED = "campaigns.recipient_batch.selected"


@dataclass(frozen=True)
class EmailBatchQueued:
    delivery_ids: list[int]

    def event(self) -> Event:
        return Event(type=EMAIL_BATCH_QUEUED, payload={"delivery_ids": self.delivery_ids})

    @classmethod
    def from_event(cls, event: Event) -> "EmailBatchQueued":
        ids = event.payload.get("delivery_ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise PermanentError(f"not an email batch: {event.payload!r}")
        return cls(delivery_ids=ids)


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
