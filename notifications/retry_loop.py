"""The `email-retry` loop (an external consumer of the runner): every EMAIL_RETRY_POLL_S
it re-queues deferred deliveries whose time has come and deliveries whose sender died
while holding them (see notifications.services.deliveries_requeue_due)."""

import logging
import threading

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections

from workers.connection import UNAVAILABLE_ERRORS

from .services import deliveries_requeue_due

logger = logging.getLogger(__name__)

# A constant: mypy cannot check a starred tuple written in an `except` clause.
_ROUND_ERRORS: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, DatabaseError)


def run(stop_event: threading.Event) -> None:
    logger.info("email-retry: polling every %.1fs", settings.EMAIL_RETRY_POLL_S)
    try:
        while not stop_event.is_set():
            close_old_connections()
            try:
                while deliveries_requeue_due() and not stop_event.is_set():
                    pass
            except _ROUND_ERRORS as exc:  # Redis or the database away: next round
                logger.warning("email-retry: %s", exc)
            stop_event.wait(settings.EMAIL_RETRY_POLL_S)
    finally:
        connections.close_all()
