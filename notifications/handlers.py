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


def handle_recipient_batches(events: list[Event]) -> None:
    """notification / notification: ledger rows for each recipient batch (seed 002)."""
    from .services import deliveries_route

    for event in events:
        payload = event.payload
        ids = payload.get("recipient_ids")
        if not isinstance(payload.get("campaign_id"), int) or not isinstance(ids, list):
            raise PermanentError(f"not a recipient batch: {payload!r}")
        deliveries_route(campaign_id=payload["campaign_id"], recipient_ids=ids)


def handle_email_batch(event: Event) -> None:
    """email-notification / email-notification: send a batch of deliveries over SMTP."""
    from .sending import deliveries_send

    ids = event.payload.get("delivery_ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise PermanentError(f"not an email batch: {event.payload!r}")
    deliveries_send(delivery_ids=ids)


ORDER_FINALIZED = "orders.order.finalized"


def handle_order_finalized(event: Event) -> None:
    """orders / notifications: email the customer the outcome of their order (seed 004's
    msg service). Other order events on the stream are not for us; customers without an
    email get the stored CustomerMessage only."""
    from .services import notification_send

    if event.type != ORDER_FINALIZED:
        return
    payload = event.payload
    if not isinstance(payload.get("order_id"), int) or not isinstance(payload.get("status"), str):
        raise PermanentError(f"not a finalized order: {payload!r}")
    if not payload.get("customer_email"):
        return
    notification_send(
        channel="email",
        email=payload["customer_email"],
        subject=f"Your order #{payload['order_id']}: {payload['status']}",
        body=str(payload.get("message", "")),
        dedupe_key=f"order:{payload['order_id']}:finalized",
    )
