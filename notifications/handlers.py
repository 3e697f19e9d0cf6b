import logging

from django.utils.dateparse import parse_datetime

from workers.events import Event
from workers.runner import PermanentError

from .services import notification_messages_store

logger = logging.getLogger("notifications.consumer")


def handle_notification_messages(events: list[Event]) -> None:
    """NotificationStream / demo_consumer_group: log each message, store it."""
    for event in events:
        payload = event.payload
        if not isinstance(payload.get("description"), str) or "id" not in payload or "timestamp" not in payload:
            raise PermanentError(f"not a notification message: {payload!r}")
        if parse_datetime(str(payload["timestamp"])) is None:
            raise PermanentError(f"bad timestamp in notification message: {payload['timestamp']!r}")
        logger.info("notification message %s: %s", payload["id"], payload["description"])
    notification_messages_store(events=events)
