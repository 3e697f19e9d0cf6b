"""The reconciler (`runworker reconciler`, a periodic registry entry): the database is the source of truth, Redis
carries work in flight; this loop re-drives from the database what Redis lost.

Every RECONCILE_INTERVAL_S it
1. checks the Redis epoch marker (workers.redis_epoch), so a Redis that lost its data is
   recorded and reported even when no consumer loop has hit NOGROUP yet;
2. calls each re-drive of workers.registry.RECONCILERS (dotted paths into the apps'
   services: `workers` knows streams, never domains) with `stuck_for_s` =
   RECONCILE_AFTER_S. Each finds its entities left in a non-final state for that long and
   publishes again, with the original event ids, what moves them on; every step
   downstream is idempotent, so a re-drive of work that was only slow does nothing twice.
The number re-driven is counted as `consumer_processed_total{consumer="reconciler"}`.
"""

import logging

import redis
from django.conf import settings
from django.db import DatabaseError
from django.utils.module_loading import import_string

from . import metrics
from .connection import UNAVAILABLE_ERRORS, get_redis
from .redis_epoch import epoch_check
from .registry import RECONCILERS

logger = logging.getLogger(__name__)

NAME = "reconciler"
# A constant: mypy cannot check a starred tuple written in an `except` clause.
_ROUND_ERRORS: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, redis.ResponseError, DatabaseError)


def reconcile_once() -> dict[str, int]:
    """One round: the epoch check, then every re-drive; return path → entities re-driven."""
    try:
        epoch_check(get_redis(), detected_by=NAME)
    except _ROUND_ERRORS as exc:
        logger.warning("reconciler: cannot check the Redis epoch: %s", exc)
    redriven: dict[str, int] = {}
    for path in RECONCILERS:
        try:
            redriven[path] = import_string(path)(stuck_for_s=settings.RECONCILE_AFTER_S)
        except _ROUND_ERRORS as exc:  # Redis or the database away: the next round retries
            logger.warning("reconciler: %s failed: %s", path, exc)
        except Exception:  # a bug in one re-drive must not stop the others
            logger.exception("reconciler: %s failed", path)
    total = sum(redriven.values())
    if total:
        try:
            pipe = get_redis().pipeline(transaction=False)
            metrics.incr_consumer(pipe, NAME, processed=total)
            pipe.execute()
        except _ROUND_ERRORS as exc:
            logger.warning("reconciler: cannot count the re-drives: %s", exc)
    return redriven
