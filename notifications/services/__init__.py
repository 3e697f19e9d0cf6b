"""Notification writes: NotificationStream messages (`messages`) and the delivery ledger
(`deliveries`). Callers import from here."""

from .deliveries import (
    RETRYABLE_FAILURE,
    deliveries_cancel_unsent,
    deliveries_redrive_stuck,
    deliveries_requeue_due,
    deliveries_requeue_pending,
    deliveries_retry_failed,
    deliveries_route,
    message_id_for,
    notification_send,
)
from .messages import PublishedMessage, notification_message_publish, notification_messages_store

__all__ = [
    "PublishedMessage",
    "RETRYABLE_FAILURE",
    "deliveries_cancel_unsent",
    "deliveries_redrive_stuck",
    "deliveries_requeue_due",
    "deliveries_requeue_pending",
    "deliveries_retry_failed",
    "deliveries_route",
    "message_id_for",
    "notification_message_publish",
    "notification_messages_store",
    "notification_send",
]
