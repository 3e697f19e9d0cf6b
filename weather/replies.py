"""How a web process gets its replies: one listener thread per process, one lock per waiter.

Design (chosen over per-process reply streams):

- Each web process (gunicorn worker) runs ONE daemon thread doing a blocking
  `XREAD BLOCK … STREAMS weather-responses <last id>` without a consumer group. Every web
  process therefore sees every reply; it wakes only the waiter whose requestId it holds
  (a dict requestId → a waiter holding a lock) and drops the rest. A request thread never
  polls: it sleeps on its waiter's lock until the listener releases it or the timeout passes.
- Why not a group on the reply stream: a group hands each reply to ONE process, usually not
  the one waiting. Why not a reply stream per process: names must be announced in every
  request, and streams of dead processes must be found and deleted; with a handful of web
  processes, reading every reply is cheaper than that bookkeeping. (Past ~50 web processes,
  per-process reply streams would win; the request entry would then carry a `replyTo`.)
  Measured: the listener costs about 0.1 ms of CPU per XREAD that returns one reply, less
  per reply when an XREAD returns several (as under load); so with 2 web processes,
  reading the other's replies adds at most ~0.1 ms to a request/reply that costs the
  machine ~1.05 ms (bench.weather, closed loop). Per-process streams would also have to
  leave every reply on `weather-responses` (the seed's contract: entries there carry
  `requestId` and `data`), i.e. a second XADD per reply, which costs about as much.
- The listener keeps its own connection and sends XREAD on it directly (no pool checkout,
  no reply reshaping per call), and only picks `requestId` and `data` out of each entry;
  the JSON is decoded by the request thread that gets it.
- No gap at start: before the first request of a process is published, the listener reads
  the stream's last id synchronously and continues from exactly there (not `$`), so a reply
  that arrives before the thread's first XREAD is not missed. A Redis restart does not lose
  replies either: new entry ids are time-based and larger than the last one seen.
- A timed-out waiter is removed at once (`forget` in a finally) and its requestId is
  remembered (the last LATE_MEMORY of them): its reply, if it comes after all, is dropped
  and counted in `weather_replies_late_total` (this process's caller got a 504). Replies
  to other processes' requests are the normal cost of every process reading every reply:
  dropped and counted apart in `weather_replies_foreign_total`, which is not a loss. A
  duplicate reply (a reclaimed request processed twice) that finds its waiter already
  answered counts in `weather_replies_duplicate_total`; one that comes after the answered
  waiter is gone cannot be told from a foreign reply and counts there.
- Forked processes (gunicorn) start their own listener: the router checks the pid.
- On a Redis Cluster the listener sends its XREAD through the cluster client instead, which
  finds the stream's current master (it moves on a failover) and follows MOVED.
"""

import logging
import os
import threading
from collections import OrderedDict
from typing import cast

from django.conf import settings
from django.core.signals import setting_changed
from prometheus_client import Counter, Gauge

from workers.backoff import backoff
from workers.connection import UNAVAILABLE_ERRORS, StreamEntry, XReadReply, get_redis, is_cluster
from workers.publish import stream_name

logger = logging.getLogger(__name__)

PENDING = Gauge(
    "ingress_pending_requests",
    "Requests waiting for their reply in this web process",
    multiprocess_mode="livesum",
)
LATE = Counter("weather_replies_late", "Replies to this process's requests that came after their timeout (a 504)")
FOREIGN = Counter("weather_replies_foreign", "Replies to other web processes' requests, skipped (not a loss)")
DUPLICATE = Counter("weather_replies_duplicate", "Second replies to a request already answered here")
# Timed-out request ids remembered to tell a late reply from a foreign one; past this many
# the oldest is forgotten (its late reply would count as foreign).
LATE_MEMORY = 10_000


class _Waiter:
    """One request's wait: a lock held from the start, released by the listener when the
    reply is in (a bare lock: a threading.Event is a Condition, a lock and a deque)."""

    __slots__ = ("_arrived", "answered", "reply")

    def __init__(self) -> None:
        self._arrived = threading.Lock()
        self._arrived.acquire()
        self.answered = False
        self.reply: str | None = None

    def answer(self, reply: str | None) -> None:
        """The listener's side (one thread): keep the reply and wake the waiter."""
        self.reply = reply
        self.answered = True
        self._arrived.release()

    def wait(self, timeout: float) -> bool:
        """Whether the reply came within `timeout` seconds."""
        return self._arrived.acquire(timeout=max(timeout, 0))


class ReplyRouter:
    def __init__(self, stream: str):
        self.stream = stream
        self._waiters: dict[str, _Waiter] = {}
        self._timed_out: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._last_id = "0-0"
        self._stop = threading.Event()
        self.last_error: str | None = None

    # -- request side ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the listener of this process if needed. Talks to Redis (may raise)."""
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid = os.getpid()
            # Decoded RESP2 reply (the stub also allows bytes and None ids).
            tail = cast(list[StreamEntry], get_redis().xrevrange(self.stream, count=1))
            self._last_id = tail[0][0] if tail else "0-0"
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="weather-replies", daemon=True)
            self._thread.start()

    def expect(self, request_id: str) -> _Waiter:
        """Register interest in `request_id` BEFORE publishing the request."""
        waiter = _Waiter()
        with self._lock:
            self._waiters[request_id] = waiter
        PENDING.inc()
        return waiter

    def forget(self, request_id: str) -> None:
        """Remove the waiter (answered, timed out, or the publish failed)."""
        with self._lock:
            removed = self._waiters.pop(request_id, None)
            if removed is not None and not removed.answered:
                self._timed_out[request_id] = None
                if len(self._timed_out) > LATE_MEMORY:
                    self._timed_out.popitem(last=False)
        if removed is not None:
            PENDING.dec()

    def pending(self) -> int:
        return len(self._waiters)

    def listening(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()

    def _after_fork(self) -> None:
        # A forked child (a gunicorn worker) has no listener thread and none of the
        # parent's waiters; its first request starts its own listener.
        self._lock = threading.Lock()
        self._waiters = {}
        self._timed_out = OrderedDict()
        self._thread = None
        self._pid = None

    # -- listener thread --------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        # The blocking read must return before the socket timeout fires.
        block_ms = int(min(settings.WEATHER_LISTENER_BLOCK_MS, settings.REDIS_SOCKET_TIMEOUT * 1000 / 2))
        failures = 0
        pool = connection = None
        try:
            while not self._stop.is_set():
                try:
                    client = get_redis()
                    if is_cluster(client):
                        # The stream's master changes on a failover: the cluster client
                        # routes each XREAD and follows MOVED (its reply: decoded fields).
                        entries = _cluster_entries(
                            client.xread({self.stream: self._last_id}, count=1000, block=block_ms)
                        )
                        response = None
                    else:
                        if connection is None:  # kept across errors: it reconnects on the next send
                            pool = client.connection_pool
                            connection = pool.get_connection()
                        # XREAD straight on the listener's own connection, without redis-py's
                        # per-command pool checkout and reply reshaping: this loop runs for
                        # every reply of every web process, in each of them.
                        connection.send_command(
                            "XREAD", "COUNT", 1000, "BLOCK", block_ms, "STREAMS", self.stream, self._last_id
                        )
                        response = connection.read_response()
                        entries = _stream_entries(response)
                    failures = 0
                    self.last_error = None
                except UNAVAILABLE_ERRORS as exc:
                    if connection is not None:
                        connection.disconnect()
                    if self._stop.is_set():
                        break
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    delay = backoff(failures, base=0.05, cap=2.0)
                    failures += 1
                    logger.warning("weather reply listener: Redis unavailable (%s); retry in %.2fs", exc, delay)
                    self._stop.wait(delay)
                    continue
                except Exception:  # never let the process lose its listener
                    logger.exception("weather reply listener: unexpected error")
                    if connection is not None:
                        connection.disconnect()
                    self._stop.wait(0.5)
                    continue
                for entry_id, flat_fields in entries:
                    self._last_id = entry_id
                    fields = dict(zip(flat_fields[::2], flat_fields[1::2], strict=True))
                    self._deliver(fields.get("requestId", ""), fields.get("data"))
        finally:
            if pool is not None and connection is not None:
                connection.disconnect()
                pool.release(connection)

    def _deliver(self, request_id: str, data: str | None) -> None:
        with self._lock:
            waiter = self._waiters.get(request_id)
            late = waiter is None and self._timed_out.pop(request_id, False) is None
        if waiter is None:
            (LATE if late else FOREIGN).inc()
            return
        if waiter.answered:
            DUPLICATE.inc()
            return
        waiter.answer(data)


def _stream_entries(response: object) -> list[tuple[str, list[str]]]:
    """The (id, [field, value, ...]) entries of a raw one-stream XREAD reply: a map under
    RESP3, a list of [stream, entries] pairs under RESP2, nil when the block timed out."""
    if not response:
        return []
    if isinstance(response, dict):
        return cast(list[tuple[str, list[str]]], next(iter(response.values())))
    return cast(list[tuple[str, list[str]]], cast(list, response)[0][1])


def _cluster_entries(response: object) -> list[tuple[str, list[str]]]:
    """The same shape from a cluster client's (reshaped, RESP2) XREAD reply."""
    if not response:
        return []
    entries = cast(XReadReply, response)[0][1]
    return [(entry_id, [item for pair in fields.items() for item in pair]) for entry_id, fields in entries]


_routers: dict[str, ReplyRouter] = {}
_routers_lock = threading.Lock()


def get_router() -> ReplyRouter:
    """The router of this process for the configured reply stream."""
    name = stream_name("weather_responses")
    router = _routers.get(name)
    if router is None:
        with _routers_lock:
            router = _routers.setdefault(name, ReplyRouter(name))
    return router


def wait_for(waiter: _Waiter, timeout: float) -> str | None:
    """Sleep until the reply arrives or `timeout` passes; the reply's `data`, or None."""
    waiter.wait(timeout)
    return waiter.reply


def stop_listeners() -> None:
    """Stop this process's listener threads (they exit within one blocking read)."""
    with _routers_lock:
        for router in _routers.values():
            router.stop()
        _routers.clear()


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting in ("REDIS_URL", "STREAMS"):  # tests pointing Django at another server
        stop_listeners()


setting_changed.connect(_on_setting_changed)


def _after_fork_in_child() -> None:
    global _routers_lock
    _routers_lock = threading.Lock()
    for router in _routers.values():
        router._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
