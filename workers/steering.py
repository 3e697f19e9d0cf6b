"""Pausing and resuming a registry entry (all its replicas, on every host), for operators.

`consumer_pause(name=..., by=...)` / `consumer_resume(...)` (the admin streams page, the
staff API `/api/v1/consumers/<name>/pause/`, `manage.py consumers pause <name>`) record
the state in the database (`ConsumerPause`, the source of truth) and, in the same
transaction, in Redis (`paused_key(name)`: "1" or "0"), which every loop reads through a
`PauseFlag` at most once per WORKER_PAUSE_CHECK_S. If Redis cannot take the write, the
database change is rolled back and the caller gets the error: the two never disagree.

The database wins: a key missing from Redis (Redis restarted empty, was flushed, failed
over) is read back from the database and written again (SET NX, so it never overwrites a
newer pause), so losing Redis never silently resumes a paused consumer. Who paused or
resumed what, and why, goes to the log at WARNING and stays on the row.

A paused stream consumer reads nothing (no XREADGROUP, no XAUTOCLAIM): entries already
pending stay pending, un-acked and unclaimed (every replica of the group is paused), and
new ones stay unread until `consumer_resume`, after which it goes on where it stopped.
A paused periodic entry skips its ticks; a paused Kafka ingest pauses its partitions and
keeps polling, so it keeps its group session and its assignment.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import redis
from django.conf import settings
from django.db import DatabaseError, transaction

from .connection import UNAVAILABLE_ERRORS, get_redis
from .models import ConsumerPause
from .registry import all_names, get_entry

logger = logging.getLogger(__name__)

# A constant: mypy cannot check a starred tuple written in an `except` clause.
_FLAG_ERRORS: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, DatabaseError)


def paused_key(name: str) -> str:
    """The Redis key holding entry `name`'s pause flag ("1" paused, "0" running)."""
    return f"workers:paused:{name}"


@dataclass(frozen=True)
class PauseState:
    name: str
    paused: bool
    reason: str
    changed_by: str
    changed_at: datetime | None


def _state(name: str, row: ConsumerPause | None) -> PauseState:
    if row is None:
        return PauseState(name=name, paused=False, reason="", changed_by="", changed_at=None)
    return PauseState(
        name=name, paused=row.paused, reason=row.reason, changed_by=row.changed_by, changed_at=row.changed_at
    )


def _set_paused(*, name: str, paused: bool, by: str, reason: str) -> PauseState:
    get_entry(name)  # KeyError for a name the registry does not know
    with transaction.atomic():
        row, _ = ConsumerPause.objects.update_or_create(
            name=name, defaults={"paused": paused, "changed_by": by, "reason": reason}
        )
        get_redis().set(paused_key(name), "1" if paused else "0")  # fails → the row rolls back
    logger.warning(
        "consumer %s %s by %s%s", name, "PAUSED" if paused else "resumed", by or "?", f": {reason}" if reason else ""
    )
    return _state(name, row)


def consumer_pause(*, name: str, by: str, reason: str = "") -> PauseState:
    """Pause every replica of registry entry `name` (within WORKER_PAUSE_CHECK_S, plus the
    batch in hand); KeyError for an unknown name, a Redis error if Redis is away."""
    return _set_paused(name=name, paused=True, by=by, reason=reason)


def consumer_resume(*, name: str, by: str) -> PauseState:
    """Resume every replica of `name`; they go on where they stopped."""
    return _set_paused(name=name, paused=False, by=by, reason="")


def pause_states() -> dict[str, PauseState]:
    """The recorded state of every registry entry (the database's; the source of truth)."""
    rows = {row.name: row for row in ConsumerPause.objects.filter(name__in=all_names())}
    return {name: _state(name, rows.get(name)) for name in all_names()}


def is_paused(name: str, client: redis.Redis | None = None) -> bool:
    """Entry `name`'s flag from Redis; from the database (and written back) when Redis lost it."""
    client = client or get_redis()
    value = client.get(paused_key(name))
    if value is not None:
        return value == "1"
    paused = ConsumerPause.objects.filter(name=name, paused=True).exists()
    try:
        client.set(paused_key(name), "1" if paused else "0", nx=True)
    except redis.ResponseError as exc:  # OOM, read-only: the database's answer stands
        logger.warning("consumer %s: cannot restore the pause flag in Redis: %s", name, exc)
    if paused:
        logger.warning("consumer %s: the pause flag was missing from Redis; restored from the database", name)
    return paused


class PauseFlag:
    """A loop's view of its entry's pause flag, read at most once per `every_s`.

    `check()` costs a clock read between refreshes and one GET at each; when Redis or
    the database cannot answer, the last known state holds (the loop's own reads fail
    and back off meanwhile anyway).
    """

    def __init__(self, name: str, *, every_s: float | None = None):
        self.name = name
        self.every_s = every_s if every_s is not None else settings.WORKER_PAUSE_CHECK_S
        self.paused = False
        self._next = 0.0

    def check(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return self.paused
        self._next = now + self.every_s
        try:
            paused = is_paused(self.name)
        except _FLAG_ERRORS as exc:
            logger.debug("%s: cannot read the pause flag (%s); keeping %s", self.name, exc, self.paused)
            return self.paused
        if paused != self.paused:
            logger.warning(
                "%s: %s", self.name, "paused by an operator; reading nothing until resumed" if paused else "resumed"
            )
        self.paused = paused
        return paused
