"""The events the notifications app emits: seed 001's messages on `NotificationStream`
and the email batches on `email-notification`."""

from dataclasses import dataclass

from workers.events import Event
from workers.handling import PermanentError

MESSAGE_PUBLISHED = "notifications.message.published"
EMAIL_BATCH_QUEUED = "notifications.email_batch.queued"
EVENT_TYPES = (MESSAGE_PUBLISHED, EMAIL_BATCH_QUEUED)


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
