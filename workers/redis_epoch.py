"""Noticing that Redis lost its data, and saying so.

Redis carries the work in flight (streams, consumer groups, pending lists); the database
is the source of truth. When Redis restarts empty (no persistence, a lost volume), is
flushed, or fails over to an empty replica, the consumer loops quietly recreate their
groups on NOGROUP and carry on: without this module nobody would know that the entries
accepted but not yet consumed are gone.

The check: a marker key (`commsplatform:redis-epoch`) holds a random epoch that the
database also keeps (`RedisEpoch`, one row). The first consumer group created writes
both. Whenever a consumer loop (re)creates its group, and on every round of the
reconciler, `epoch_check` compares them: a marker that is missing (or differs) while the
database has a row means Redis lost what it had. The loss is recorded exactly once (a
conditional UPDATE on the old epoch, whoever sees it first), logged at ERROR, counted in
`redis_data_lost_total`, and shown by /readyz (degraded) and the admin streams page for
REDIS_LOSS_ALARM_S afterwards. The reconciler (workers.reconcile) re-drives from the
database what was in flight.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from . import keys
from .models import RedisEpoch

logger = logging.getLogger(__name__)

MARKER_KEY = keys.REDIS_EPOCH_MARKER
_ROW_PK = 1


@dataclass(frozen=True)
class EpochStatus:
    """What the database and Redis say, for /readyz, /metrics and the admin."""

    known: bool  # the database has seen streams on this Redis
    marker_matches: bool | None  # None: not known yet (no row), or Redis unreachable
    losses: int
    last_loss_at: datetime | None
    last_loss_detected_by: str

    @property
    def unrecorded_loss(self) -> bool:
        """Redis lost its data and no worker has recorded it yet."""
        return self.known and self.marker_matches is False

    @property
    def alarm(self) -> bool:
        """A loss is unrecorded, or was recorded less than REDIS_LOSS_ALARM_S ago."""
        if self.unrecorded_loss:
            return True
        if self.last_loss_at is None:
            return False
        return timezone.now() - self.last_loss_at < timedelta(seconds=settings.REDIS_LOSS_ALARM_S)

    def describe(self) -> str:
        if self.unrecorded_loss:
            return "Redis lost its data: the epoch marker is missing (the reconciler will re-drive the work)"
        if self.alarm:
            if self.last_loss_at is None:
                raise RuntimeError("an alarm without a loss time")
            return (
                f"Redis lost its data at {self.last_loss_at.isoformat()} (noticed by {self.last_loss_detected_by}); "
                "streams and groups were recreated and the reconciler re-drives orders and campaigns from the "
                "database; events accepted into Redis and not yet consumed were lost"
            )
        return "ok"


def _new_marker(client: redis.Redis) -> str:
    """Write a fresh marker unless another process just did; return the marker in Redis."""
    candidate = uuid.uuid4().hex
    client.set(MARKER_KEY, candidate, nx=True)
    return client.get(MARKER_KEY) or candidate  # type: ignore[return-value]  # decode_responses


def epoch_check(client: redis.Redis, *, detected_by: str) -> bool:
    """Make sure Redis carries the database's epoch; record a loss if it lost it.

    Returns True when this call recorded a loss (at most one caller per loss does).
    Raises redis errors (a read-only Redis cannot take a new marker) and database errors.
    """
    # The row first, then the marker: read the other way round, a process could see the
    # marker missing, then the row another process has just moved on, and count it again.
    row = RedisEpoch.objects.filter(pk=_ROW_PK).first()
    marker: str | None = client.get(MARKER_KEY)  # type: ignore[assignment]
    if row is None:
        # First contact: whatever Redis holds now is the epoch (a fresh database with a
        # Redis that already has a marker adopts it; that is not a loss).
        RedisEpoch.objects.get_or_create(pk=_ROW_PK, defaults={"epoch": marker or _new_marker(client)})
        return False
    if marker == row.epoch:
        return False
    # The marker is missing (lost), or another process is recording this very loss and has
    # set the new marker but not yet the row: the conditional update lets one of us count it.
    new_epoch = marker or _new_marker(client)
    if new_epoch == row.epoch:
        return False
    recorded = RedisEpoch.objects.filter(pk=_ROW_PK, epoch=row.epoch).update(
        epoch=new_epoch,
        losses=F("losses") + 1,
        last_loss_at=timezone.now(),
        last_loss_detected_by=detected_by[:200],
    )
    if recorded:
        logger.error(
            "REDIS DATA LOST: the epoch marker %s was %s (noticed by %s); streams and consumer groups are "
            "recreated, entries accepted but not yet consumed are gone, and the reconciler re-drives orders "
            "and campaigns from the database",
            MARKER_KEY,
            "missing" if marker is None else f"replaced ({marker})",
            detected_by,
        )
    return bool(recorded)


def epoch_status(client: redis.Redis | None) -> EpochStatus:
    """Read-only: the database's row and, when `client` is given, whether the marker matches."""
    row = RedisEpoch.objects.filter(pk=_ROW_PK).first()
    if row is None:
        return EpochStatus(False, None, 0, None, "")
    matches: bool | None = None
    if client is not None:
        matches = client.get(MARKER_KEY) == row.epoch
    return EpochStatus(True, matches, row.losses, row.last_loss_at, row.last_loss_detected_by)
