"""NotificationStream messages: publish one (`POST /event`) and store what the
`notifications` consumer reads back. Message ids are unique without a round trip."""

import itertools
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from notifications.events import MESSAGE_PUBLISHED
from notifications.models import NotificationMessage
from workers.events import Event
from workers.handling import PermanentError
from workers.publish import RateWindow, publish, publish_within_rates

logger = logging.getLogger(__name__)


# The seed's integer message id, unique without a round trip: milliseconds since
# 2025-01-01 (41 bits) | process (10 bits) | per-process sequence (12 bits).
_EPOCH_MS = 1_735_689_600_000
_sequence = itertools.count()
_sequence_lock = threading.Lock()


def _next_message_id() -> int:
    with _sequence_lock:
        seq = next(_sequence) & 0xFFF
    return ((int(time.time() * 1000) - _EPOCH_MS) << 22) | ((os.getpid() & 0x3FF) << 12) | seq


@dataclass(frozen=True)
class PublishedMessage:
    id: int
    description: str
    timestamp: str
    stream_id: str


def notification_message_publish(*, description: str, rate_windows: Sequence[RateWindow] = ()) -> PublishedMessage:
    """Write a notification message to NotificationStream (`POST /event`).

    With `rate_windows` (counters on the stream's Redis), the message is written only if
    each allows it, counted in the same round trip; else workers.publish.RateExceeded.
    Raises workers.publish.StreamUnavailable when Redis is unreachable.
    """
    timestamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    message_id = _next_message_id()
    payload = {"id": message_id, "description": description, "timestamp": timestamp}
    event = Event(type=MESSAGE_PUBLISHED, payload=payload)
    if rate_windows:
        stream_id = publish_within_rates("events", event, windows=rate_windows)
    else:
        stream_id = publish("events", event)
    return PublishedMessage(id=message_id, description=description, timestamp=timestamp, stream_id=stream_id)


def _message_timestamp(event: Event) -> datetime:
    # The handler rejects bad timestamps first; this keeps None out of the NOT NULL column.
    timestamp = parse_datetime(event.payload["timestamp"])
    if timestamp is None:
        raise PermanentError(f"bad timestamp in notification message: {event.payload['timestamp']!r}")
    return timestamp


def notification_messages_store(*, events: list[Event]) -> int:
    """Store consumed messages; an event id seen before is ignored (redelivery)."""
    rows = [
        NotificationMessage(
            event_id=event.id,
            message_id=int(event.payload["id"]),
            description=str(event.payload["description"]),
            timestamp=_message_timestamp(event),
            stream_id=event.stream_id or "",
        )
        for event in events
    ]
    NotificationMessage.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
