import logging

from django.utils.dateparse import parse_datetime

from orders.events import ORDER_FINALIZED, OrderFinalized
from workers.events import Event
from workers.handling import PermanentError, handles

from .events import (
    EMAIL_BATCH_QUEUED,
    MESSAGE_PUBLISHED,
    RECIPIENT_BATCH_SELECTED,
    EmailBatchQueued,
    RecipientBatchSelected,
)
from .sending import deliveries_send
from .services import deliveries_route, notification_messages_store, notification_send

logger = logging.getLogger("notifications.consumer")


@handles(MESSAGE_PUBLISHED)
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


@handles(RECIPIENT_BATCH_SELECTED)
def handle_recipient_batches(events: list[Event]) -> None:
    """notification / notification: ledger rows for each recipient batch (seed 002)."""
    for event in events:
        batch = RecipientBatchSelected.from_event(event)
        deliveries_route(campaign_id=batch.campaign_id, recipient_ids=batch.recipient_ids)


@handles(EMAIL_BATCH_QUEUED)
def handle_email_batch(event: Event) -> None:
    """email-notification / email-notification: send a batch of deliveries over SMTP."""
    deliveries_send(delivery_ids=EmailBatchQueued.from_event(event).delivery_ids)


@handles(ORDER_FINALIZED)
def handle_order_finalized(event: Event) -> None:
    """orders / notifications: email the customer the outcome of their order (seed 004's
    msg service). Customers without an email get the stored CustomerMessage only."""
    order = OrderFinalized.from_event(event)
    if not order.customer_email:
        return
    notification_send(
        channel="email",
        email=order.customer_email,
        subject=f"Your order #{order.order_id}: {order.status}",
        body=order.message,
        dedupe_key=f"order:{order.order_id}:finalized",
    )
