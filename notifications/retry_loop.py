"""The `email-retry` tick (a periodic entry of workers.registry): every EMAIL_RETRY_POLL_S
the runner calls `requeue_tick`, again at once while it re-queued something, to put back
deferred deliveries whose time has come and deliveries whose sender died while holding
them (see notifications.services.deliveries_requeue_due)."""

from .services import deliveries_requeue_due


def requeue_tick() -> int:
    """One batch of due deliveries back to `pending`; how many."""
    return deliveries_requeue_due()
