"""The one way events leave the process.

- `publish` / `publish_many`: XADD now (events that accompany no database change, like
  `POST /event`). Raises `StreamUnavailable` when Redis cannot be reached.
- `publish_within_rates`: the same XADD behind sliding-window rate counters kept on the
  stream's Redis, counted and checked in the same round trip (one Lua script): the ingest
  path's throttle and its write cost one round trip instead of two. Raises `RateExceeded`
  (nothing written) when a window is full.
- `publish_on_commit`: for services that change the database. The events are stored in
  the outbox inside the caller's transaction and sent right after commit; a rolled-back
  transaction emits nothing; `relay_outbox` resends whatever was not sent. On PostgreSQL
  the outbox INSERT shares the COMMIT's round trip (commsplatform.db.postgresql), and the
  XADDs after commit do not wait for Redis's replies (`UnreadXadds`). The rows of sent
  events are deleted by a background thread in batches (`SentOutboxRows`), which also
  reads those replies, off the request's path.

With tracing on, each call is a `publish <stream>` span whose context the events carry
(and the outbox stores), see workers.tracing.
"""

import atexit
import functools
import itertools
import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple, Protocol, cast

import orjson
import redis
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Field
from django.utils import timezone

from .connection import UNAVAILABLE_ERRORS, XAddFields, get_redis, is_cluster
from .events import Event
from .models import OutboxEvent
from .tracing import traced_publish

logger = logging.getLogger(__name__)


class StreamUnavailable(Exception):
    """Redis could not be reached to publish; nothing was written."""


def stream_name(stream: str) -> str:
    """Resolve a key of settings.STREAMS (e.g. "events") to the stream's name."""
    return settings.STREAMS.get(stream, stream)


def publish(stream: str, event: Event, *, maxlen: int | None = None) -> str:
    """XADD one event; return its entry id."""
    return publish_many(stream, [event], maxlen=maxlen)[0]


@traced_publish
def publish_many(stream: str, events: Sequence[Event], *, maxlen: int | None = None) -> list[str]:
    """XADD several events in one round trip; return their entry ids in order.

    `maxlen` (approximate) is only for streams nobody consumes in a group, such as
    reply streams; grouped streams are trimmed by `workers.trimming`, never here.
    """
    if not events:
        return []
    name = stream_name(stream)
    try:
        pipe = get_redis().pipeline(transaction=False)
        for event in events:
            pipe.xadd(name, cast(XAddFields, event.to_fields()), maxlen=maxlen, approximate=True)
        return pipe.execute()
    except UNAVAILABLE_ERRORS as exc:
        raise StreamUnavailable(f"Redis unreachable while publishing to {name}: {exc}") from exc


@dataclass(frozen=True)
class RateWindow:
    """One sliding-window rate limit: this window's counter and the last one's.

    A request is allowed while `current + ceil(previous × previous_share) < limit`, where
    `current` counts the requests allowed so far in this window and `previous_share` is
    the share of the last window not yet elapsed (commsplatform.throttling explains the
    estimate). The Lua script below applies the same test, in the same double arithmetic.
    """

    current_key: str
    previous_key: str
    limit: int
    ttl: int  # seconds the current window's counter is kept
    previous_share: float

    def allows(self, current: int, previous: int) -> bool:
        return current + math.ceil(previous * self.previous_share) < self.limit


@dataclass(frozen=True)
class WindowCount:
    """A RateWindow's counters as one request found them (before it was counted)."""

    current: int
    previous: int
    allowed: bool


class RateExceeded(Exception):
    """A RateWindow was full: nothing was written, and no refused request was counted."""

    def __init__(self, counts: list[WindowCount]) -> None:
        super().__init__("rate exceeded")
        self.counts = counts


# KEYS: current_1, previous_1, …, current_n, previous_n, stream.
# ARGV: n, then limit, ttl, previous_share of each window, then the entry's fields.
# Each window counts the request (INCR) and takes it back (DECR) if it is full, as
# SlidingWindowCounterMixin.allow_request does in its pipeline; the XADD runs only when
# every window allowed it. Atomic, so no other request sees a refused one counted.
_RATED_XADD = """
local n = tonumber(ARGV[1])
local reply = {""}
local refused = false
for i = 1, n do
  local current = KEYS[2 * i - 1]
  local count = redis.call("INCR", current)
  redis.call("EXPIRE", current, ARGV[3 * i])
  local before = tonumber(redis.call("GET", KEYS[2 * i]) or "0")
  local allowed = 1
  if (count - 1) + math.ceil(before * tonumber(ARGV[3 * i + 1])) >= tonumber(ARGV[3 * i - 1]) then
    allowed = 0
    refused = true
    redis.call("DECR", current)
  end
  reply[#reply + 1] = count - 1
  reply[#reply + 1] = before
  reply[#reply + 1] = allowed
end
if not refused then
  reply[1] = redis.call("XADD", KEYS[2 * n + 1], "*", unpack(ARGV, 3 * n + 2))
end
return reply
"""
_rated_xadd: Any = None  # redis-py's Script (EVALSHA, loaded again after a NOSCRIPT)


def publish_within_rates(stream: str, event: Event, *, windows: Sequence[RateWindow]) -> str:
    """XADD one event if every window allows it, counting it in each; return its entry id.

    The windows' counters must live on the stream's Redis (settings.REDIS_URL): one round
    trip does the counting and the write. Only for a single server: on a Redis Cluster the
    counters and the stream sit in different slots (and the counters on another server,
    CACHE_REDIS_URL), so the caller checks them first and then calls `publish`.
    Raises RateExceeded (nothing written) or StreamUnavailable.
    """
    return _publish_within_rates(stream, [event], windows=windows)[0]


@traced_publish
def _publish_within_rates(stream: str, events: Sequence[Event], *, windows: Sequence[RateWindow]) -> list[str]:
    (event,) = events
    name = stream_name(stream)
    global _rated_xadd
    client = get_redis()
    if _rated_xadd is None:
        _rated_xadd = client.register_script(_RATED_XADD)
    keys: list[str] = []
    args: list[Any] = [len(windows)]
    for window in windows:
        keys += [window.current_key, window.previous_key]
        args += [window.limit, window.ttl, repr(window.previous_share)]
    keys.append(name)
    for field_name, value in event.to_fields().items():
        args += [field_name, value]
    try:
        reply = _rated_xadd(keys=keys, args=args, client=client)
    except UNAVAILABLE_ERRORS as exc:
        raise StreamUnavailable(f"Redis unreachable while publishing to {name}: {exc}") from exc
    counts = [
        WindowCount(current=int(reply[i]), previous=int(reply[i + 1]), allowed=reply[i + 2] == 1)
        for i in range(1, len(reply), 3)
    ]
    if not reply[0]:
        raise RateExceeded(counts)
    return [reply[0]]


@traced_publish
def publish_on_commit(stream: str, events: Event | Iterable[Event]) -> None:
    """Store events in the outbox now; send them after the surrounding commit."""
    batch = [events] if isinstance(events, Event) else list(events)
    if not batch:
        return
    name = stream_name(stream)
    rows: Sequence[_OutboxRow]
    if connection.in_atomic_block and hasattr(connection, "defer"):
        # PostgreSQL (commsplatform.db.postgresql): the INSERT goes with the next
        # statement or in the COMMIT's round trip.
        transaction.on_commit(_DeferredRows(name, batch).send, robust=True)
        return
    if connection.features.can_return_rows_from_bulk_insert:
        rows = _insert_outbox_rows(name, batch)
    else:  # a backend that returns no keys from bulk inserts
        OutboxEvent.objects.bulk_create(
            [OutboxEvent(stream=name, event_id=event.id, fields=event.to_fields()) for event in batch]
        )
        rows = list(OutboxEvent.objects.filter(event_id__in=[e.id for e in batch], stream=name).order_by("pk"))
    # The rows in hand are what was committed: no need to read them back.
    transaction.on_commit(functools.partial(_send_committed, rows), robust=True)


class _OutboxRow(Protocol):
    """What sending needs of an outbox row: an OutboxEvent (the relay) or a SentRow."""

    @property
    def pk(self) -> int: ...
    @property
    def stream(self) -> str: ...
    @property
    def fields(self) -> dict[str, str]: ...


class SentRow(NamedTuple):
    """A row publish_on_commit inserted, as sending needs it (no model instance to build)."""

    pk: int
    stream: str
    fields: dict[str, str]


_OUTBOX_COLUMNS = ("stream", "event_id", "fields", "created_at", "attempts", "last_error")


@functools.lru_cache(maxsize=32)
def _outbox_insert_sql(vendor: str, rows: int) -> str:
    """`INSERT … VALUES (…), … RETURNING id` for `rows` outbox rows, built once per size.

    On PostgreSQL the event id and the fields travel as text cast in SQL (`::uuid`,
    `::jsonb`): the fields are JSON-encoded once, by orjson, instead of by a per-call
    `Jsonb` adapter running the standard json module; `attempts` and `last_error` are
    the constants every new row has."""
    model = OutboxEvent._meta
    quote = connection.ops.quote_name
    if vendor == "postgresql":
        row = "(%s, %s::uuid, %s::jsonb, %s, 0, '')"
    else:
        row = "(%s, %s, %s, %s, 0, '')"
    # Names from the model, quoted; every value is a bound parameter or a constant.
    return (
        f"INSERT INTO {quote(model.db_table)} ({', '.join(quote(c) for c in _OUTBOX_COLUMNS)}) "  # noqa: S608
        f"VALUES {', '.join([row] * rows)} RETURNING {quote(model.pk.column)}"
    )


@functools.cache
def _field_adapters() -> tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]:
    """The model's own adapters of `event_id` and `created_at` (backends without casts)."""
    model = OutboxEvent._meta
    return (
        cast(Field, model.get_field("event_id")).get_db_prep_save,
        cast(Field, model.get_field("created_at")).get_db_prep_save,
    )


class _DeferredRows:
    """The outbox rows of one publish_on_commit call, their INSERT deferred on the
    connection (commsplatform.db.postgresql): the database runs it in its place in the
    transaction, before any later statement, at the latest with the COMMIT, whose round
    trip it shares. `send` is the on_commit callback."""

    __slots__ = ("fields", "name", "rows")

    def __init__(self, name: str, batch: list[Event]) -> None:
        self.name = name
        self.fields = [event.to_fields() for event in batch]
        self.rows: list[SentRow] | None = None
        now = timezone.now()
        params: list[Any] = []
        for event, fields in zip(batch, self.fields, strict=True):
            params += (name, event.id, orjson.dumps(fields).decode(), now)
        connection.defer(_outbox_insert_sql(connection.vendor, len(batch)), params, self._inserted)  # type: ignore[attr-defined]

    def _inserted(self, ids: list[tuple[Any, ...]]) -> None:
        self.rows = [SentRow(pk, self.name, fields) for (pk,), fields in zip(ids, self.fields, strict=True)]

    def send(self) -> None:
        if self.rows is None:
            # Callbacks run without a commit (the tests' captureOnCommitCallbacks), before
            # any other statement: the rows are inserted now, as they would have been.
            connection.run_deferred()  # type: ignore[attr-defined]
        _send_committed(self.rows or [])


def _insert_outbox_rows(name: str, batch: list[Event]) -> list[SentRow]:
    """The rows of `batch` in one `INSERT … RETURNING id`. What `bulk_create` sends, without
    building a query or model instances per call: this runs in every request and saga step
    that publishes, where the ORM's compiling was most of the outbox's cost."""
    now = timezone.now()
    all_fields = [event.to_fields() for event in batch]
    params: list[Any] = []
    if connection.vendor == "postgresql":
        for event, fields in zip(batch, all_fields, strict=True):
            params += (name, event.id, orjson.dumps(fields).decode(), now)
    else:
        prep_event_id, prep_created_at = _field_adapters()
        created_at = prep_created_at(now, connection)
        for event, fields in zip(batch, all_fields, strict=True):
            params += (name, prep_event_id(event.id, connection), orjson.dumps(fields).decode(), created_at)
    with connection.cursor() as cursor:
        cursor.execute(_outbox_insert_sql(connection.vendor, len(batch)), params)
        ids = [pk for (pk,) in cursor.fetchall()]
    return [SentRow(pk, name, fields) for pk, fields in zip(ids, all_fields, strict=True)]


def _send_committed(rows: Sequence[_OutboxRow]) -> None:
    """Send the rows of a transaction that has just committed (an on_commit callback)."""
    if not rows:
        return
    if connection.in_atomic_block or not unread_xadds.send(rows):
        # Inside a transaction (callbacks a test runs before any commit), a Redis Cluster,
        # or the connection just failed: XADD and wait for the reply, with the client's retries.
        _send(rows)


class UnreadXadds:
    """The XADDs of committed outbox rows, written without waiting for Redis's replies.

    After commit, publish_on_commit's events go out at once on one Redis connection of the
    process (a lock keeps each write whole and the writes in commit order); the request
    does not wait for the round trip. The outbox-sent-rows thread reads the replies, in
    that order, before each batch it deletes, and hands over for deletion only the rows
    whose XADD Redis answered with an entry id. A refused XADD (OOM, a key of another type)
    leaves its row in the outbox for the relay, as a failed XADD did; when the connection
    is lost with replies unread, the thread sends those rows again the usual way (some may
    have reached Redis: consumers drop the copies by event id). One server only: on a
    Redis Cluster each XADD goes to its slot's master the usual way.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: Any = None
        self._conn: Any = None  # a connection taken from the client's pool, kept
        self._pid = 0
        self._unread: deque[_OutboxRow] = deque()

    def send(self, rows: Sequence[_OutboxRow]) -> bool:
        """Write the rows' XADDs; False (nothing written) when the caller must send them."""
        client = get_redis()
        if is_cluster(client):
            return False
        lost: list[_OutboxRow] = []
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent reads its own replies
                self._conn, self._client, self._pid = None, client, os.getpid()
                self._unread.clear()
            elif self._client is not client:  # another REDIS_URL: a connection to it
                lost = self._drop_connection()
                self._client = client
            try:
                if self._conn is None:
                    self._conn = client.connection_pool.get_connection()
                conn = self._conn
                if not self._unread:
                    conn.check_health()  # a PING once the connection idled health_check_interval
                commands = [
                    ("XADD", row.stream, "*", *itertools.chain.from_iterable(row.fields.items())) for row in rows
                ]
                conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            except UNAVAILABLE_ERRORS:
                lost += self._drop_connection()
                written = False
            else:
                self._unread.extend(rows)
                written = True
            unread = len(self._unread)
        if lost:  # written before these rows, on a connection now gone: first, the usual way
            _send(lost)
        if written:
            sent_rows.wake(unread)
        return written

    def read_replies(self) -> list[int]:
        """Read the replies of the XADDs written so far; return the ids of the rows sent."""
        sent: list[int] = []
        lost: list[_OutboxRow] = []
        with self._lock:
            if self._pid != os.getpid():
                return []
            while self._unread:
                row = self._unread[0]
                try:
                    self._conn.read_response()
                except redis.ResponseError as exc:
                    logger.warning("outbox: Redis refused an event, left for the relay: %s", exc)
                except Exception as exc:  # the connection is gone, or its replies out of step
                    lost = self._drop_connection()
                    logger.warning("outbox: %d XADD(s) unanswered, sending them again: %s", len(lost), exc)
                    break
                else:
                    sent.append(row.pk)
                self._unread.popleft()
        if lost:
            _send(lost)
        return sent

    def _drop_connection(self) -> list[_OutboxRow]:
        """Close the connection; return the rows whose replies it still owed."""
        conn, self._conn = self._conn, None
        unread = list(self._unread)
        self._unread.clear()
        if conn is not None:
            conn.disconnect()
            self._client.connection_pool.release(conn)
        return unread


unread_xadds = UnreadXadds()


def _send(rows: Sequence[_OutboxRow]) -> int:
    if not rows:
        return 0
    try:
        if len(rows) == 1:  # the common case of a request: no pipeline to build
            get_redis().xadd(rows[0].stream, cast(XAddFields, rows[0].fields))
        else:
            pipe = get_redis().pipeline(transaction=False)
            for row in rows:
                pipe.xadd(row.stream, cast(XAddFields, row.fields))
            pipe.execute()
    except UNAVAILABLE_ERRORS as exc:
        logger.warning("outbox: %d event(s) left for the relay, Redis unreachable: %s", len(rows), exc)
        OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(attempts=F("attempts") + 1, last_error=str(exc))
        return 0
    ids = [r.pk for r in rows]
    if connection.in_atomic_block:
        _forget_sent(ids)  # the caller's transaction (the relay's, holding these rows locked)
    else:
        sent_rows.add(ids)
    return len(rows)


def _forget_sent(ids: list[int]) -> None:
    """Delete outbox rows whose events Redis has taken.

    Losing this delete in a crash only means the relay sends those events again, which
    consumers recognise by their ids; so on PostgreSQL the commit skips its WAL flush
    (`synchronous_commit = off`), taking a disk sync off every publishing request.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        OutboxEvent.objects.filter(pk__in=ids).delete()


class _DeleteThread(threading.Thread):
    """The thread of one process that deletes what SentOutboxRows gathers."""

    def __init__(self, rows: "SentOutboxRows") -> None:
        super().__init__(name="outbox-sent-rows", daemon=True)
        self.rows = rows
        self.work = threading.Event()  # ids were handed over
        self.full = threading.Event()  # a whole batch is waiting: do not wait for more
        self.stopping = threading.Event()
        self._async_commit_connection: object = None  # the connection set to synchronous_commit off

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.work.wait()
                self.full.wait(settings.OUTBOX_DELETE_INTERVAL_S)  # let a batch gather
                self.work.clear()
                self.full.clear()
                close_old_connections()
                self.rows.take(unread_xadds.read_replies())
                self.rows.flush(self._forget_sent)
        finally:
            connection.close()  # this thread's own connection

    def _forget_sent(self, ids: list[int]) -> None:
        """`_forget_sent` on this thread's own connection: one `DELETE` in autocommit, the
        connection set to `synchronous_commit = off` once when it opens, instead of a
        transaction of four round trips and an ORM delete per batch (this thread shares the
        GIL and the cores with the requests whose rows it deletes)."""
        connection.ensure_connection()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql" and connection.connection is not self._async_commit_connection:
                cursor.execute("SET synchronous_commit TO OFF")
                self._async_commit_connection = connection.connection
            quote = connection.ops.quote_name
            model = OutboxEvent._meta
            # Names from the model, quoted; the ids are bound parameters.
            cursor.execute(
                f"DELETE FROM {quote(model.db_table)} WHERE {quote(model.pk.column)} IN ({', '.join(['%s'] * len(ids))})",  # noqa: S608
                ids,
            )

    def stop(self) -> None:
        self.stopping.set()
        self.work.set()
        self.full.set()


class SentOutboxRows:
    """Outbox rows whose events Redis has taken, deleted in batches by one thread per process.

    A request that publishes would otherwise spend a second transaction on deleting its
    own row; here the request only hands the id over, and the thread deletes whatever
    has gathered every `OUTBOX_DELETE_INTERVAL_S` (sooner past `OUTBOX_DELETE_BATCH` ids)
    in one statement. Ids not yet deleted when the process dies, or whose delete fails,
    stay in the outbox: the relay sends them again after `OUTBOX_RELAY_GRACE_S` and
    consumers drop the copies by event id, the same as after a crash between XADD and
    delete. `close()` deletes what is waiting and stops the thread (process exit, tests).
    """

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._lock = threading.Lock()
        self._thread: _DeleteThread | None = None
        self._pid = 0

    def add(self, ids: list[int]) -> None:
        with self._lock:
            self._ids.extend(ids)
            thread = self._running_thread()
            if len(self._ids) >= settings.OUTBOX_DELETE_BATCH:
                thread.full.set()
        thread.work.set()

    def take(self, ids: list[int]) -> None:
        """Ids to delete with the next batch, from the thread itself (or close)."""
        with self._lock:
            self._ids.extend(ids)

    def wake(self, unread: int) -> None:
        """XADDs were written whose replies the thread reads (`unread` of them so far)."""
        with self._lock:
            thread = self._running_thread()
            if unread >= settings.OUTBOX_DELETE_BATCH:
                thread.full.set()
        thread.work.set()

    def _running_thread(self) -> "_DeleteThread":
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()  # a forked child starts its own thread
            self._thread = _DeleteThread(self)
            self._thread.start()
        return self._thread

    def flush(self, forget: Callable[[list[int]], None] = _forget_sent) -> int:
        """Delete the rows handed over so far (in the calling thread); return how many."""
        with self._lock:
            ids, self._ids = self._ids, []
        for start in range(0, len(ids), settings.OUTBOX_DELETE_BATCH):
            try:
                forget(ids[start : start + settings.OUTBOX_DELETE_BATCH])
            except Exception as exc:  # the relay resends these rows; consumers dedupe them
                left = len(ids) - start
                logger.warning("outbox: %d sent row(s) not deleted, the relay will resend them: %s", left, exc)
                break
        return len(ids)

    def close(self, timeout: float = 10.0) -> None:
        """Delete what is waiting, stop the thread and close its database connection."""
        self.take(unread_xadds.read_replies())
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout)
        if self._ids:
            self.flush()


sent_rows = SentOutboxRows()
atexit.register(sent_rows.close)


def relay_pending(*, batch_size: int = 500, grace_s: float | None = None) -> int:
    """Send outbox rows older than the grace period (their own sender failed or died).

    Rows are locked with SKIP LOCKED where the database supports it, so several relays
    can run; a row sent twice is harmless because consumers dedupe on the event id.
    """
    grace = settings.OUTBOX_RELAY_GRACE_S if grace_s is None else grace_s
    cutoff = timezone.now() - timedelta(seconds=grace)
    sent = 0
    while True:
        with transaction.atomic():
            rows = list(
                OutboxEvent.objects.select_for_update(skip_locked=True)
                .filter(created_at__lte=cutoff)
                .order_by("pk")[:batch_size]
            )
            count = _send(rows)
        sent += count
        if count < batch_size:
            return sent
