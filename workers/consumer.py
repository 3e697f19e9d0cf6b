"""The stream consumer loop: consumer groups on Redis Streams, at-least-once, idempotent.

One `ConsumerLoop` per thread. Each loop:
1. creates its group (from id 0, so nothing published before the group existed is
   missed), and again whenever Redis answers NOGROUP (it lost its data); each time it
   checks the Redis epoch marker, so a Redis that lost its data is recorded and
   reported (workers.redis_epoch), not silently papered over;
2. first re-reads its own pending entries (a restarted consumer of the same name);
3. every `claim_every_s`, takes over entries idle for `claim_idle_ms` in other
   consumers' pending lists (`XAUTOCLAIM`: a worker died holding them). Entries of
   steps 2 and 3 were left by a crash, perhaps caused by one of them (a poison entry
   that kills or hangs the process), so they are taken one at a time, each counted with
   its real delivery count (XPENDING): only the entry being handled is counted again, and
   a poison entry reaches `max_deliveries` and the dead-letter stream on its own;
4. reads new entries with `XREADGROUP ... COUNT batch_size BLOCK block_ms`;
5. runs the handler; transient failures are retried in place with capped exponential
   backoff and full jitter; a `PermanentError`, an undecodable entry, or an entry whose
   attempts reach `max_deliveries` goes to `{<stream>}:dlq` with the error and the count;
6. acknowledges only entries that were handled or dead-lettered, in one MULTI with the
   dead-letter XADDs, the events the handler returned (`Outgoing`, e.g. replies) and the
   metric increments (on a Redis Cluster, events for a stream of another hash slot are
   XADDed just before that MULTI instead; see `_finish`).

An operator can pause the consumer (workers.steering): the loop checks its flag before
each read and claim (at most once per WORKER_PAUSE_CHECK_S) and, while paused, reads
nothing and leaves its pending entries alone. While a handler runs, `handling` holds when
it started and the entry ids, which the runner's watchdog compares with
`handler_timeout_s` (a stuck handler is reported; see workers.runner).

The stop event (set by `workers.runner.Runner` on SIGTERM) ends the loop after the batch
in hand is acked; un-acked entries are reclaimed by another consumer after the idle
time. Redis going away is survived: the loop backs off and reconnects.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict, cast

import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, connections, transaction
from tenacity import RetryCallState, RetryError, Retrying, retry_if_not_exception_type, stop_after_attempt
from tenacity.wait import wait_base

from . import metrics
from .backoff import backoff
from .connection import UNAVAILABLE_ERRORS, PendingStreamEntry, XAddFields, XReadGroupReply, get_redis, is_cluster
from .deadletter import dead_letter_stream, stream_dead_letter
from .events import Event, MalformedEvent, known_event_types
from .handling import Outgoing, PermanentError
from .keys import same_slot
from .models import ProcessedEvent
from .publish import stream_name
from .redis_epoch import epoch_check
from .registry import ConsumerSpec
from .steering import PauseFlag
from .tracing import traced_apply
from .trimming import remove_idle_consumers, trim_stream

logger = logging.getLogger(__name__)


class _Interrupted(Exception):
    """Shutdown was requested while waiting to retry: leave the entry un-acked."""


class _wait_backoff(wait_base):
    """tenacity's wait, from workers.backoff: after attempt n (from 1), backoff(n - 1)."""

    def __init__(self, *, base: float, cap: float):
        self.base = base
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        return backoff(retry_state.attempt_number - 1, base=self.base, cap=self.cap)


def default_consumer_name(index: int = 0) -> str:
    base = os.environ.get("WORKER_CONSUMER_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    return f"{base}-{index}"


class _PendingInfo(TypedDict):
    """One XPENDING (extended form) entry, as a decode_responses client returns it."""

    message_id: str
    consumer: str
    time_since_delivered: int
    times_delivered: int


def _entry_id(event: Event) -> str:
    """The stream entry id of an event this loop read (Event.from_fields got it)."""
    if event.stream_id is None:
        raise RuntimeError(f"event {event.id} was not read from a stream")
    return event.stream_id


@dataclass
class _Outcome:
    ack: list[str] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    dead: list[tuple[str, dict[str, str], str, int]] = field(default_factory=list)  # id, fields, error, attempts
    processed: int = 0
    failed: int = 0
    retried: int = 0
    duplicates: int = 0
    skipped: int = 0


class ConsumerLoop:
    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        stop: threading.Event,
        consumer: str | None = None,
        trims: bool = True,
        block_ms: int | None = None,
        claim_every_s: float | None = None,
    ):
        self.spec = spec
        self.stop = stop
        self.stream = spec.stream_name
        self.group = spec.group_name
        self.dlq = dead_letter_stream(self.stream)
        self.consumer = consumer or default_consumer_name()
        self.handler: Callable = spec.load_handler()
        # The types the handler declared with workers.handling.handles (None: every type).
        self.event_types: frozenset[str] | None = getattr(self.handler, "event_types", None)
        self._skipped_types: set[str] = set()
        self.max_deliveries = spec.max_deliveries or settings.WORKER_MAX_DELIVERIES
        self.claim_idle_ms = spec.claim_idle_ms or settings.WORKER_CLAIM_IDLE_MS
        self.block_ms = block_ms or settings.WORKER_BLOCK_MS
        self.claim_every_s = claim_every_s if claim_every_s is not None else max(self.claim_idle_ms / 2000, 0.5)
        self.trims = trims
        self._group_ready = False
        self._next_claim = 0.0
        self._next_trim = time.monotonic() + settings.WORKER_TRIM_INTERVAL_S
        self._read_own_pending = True
        self.pause = PauseFlag(spec.name)
        self.handler_timeout_s = spec.handler_timeout_s or settings.WORKER_HANDLER_TIMEOUT_S
        # While the handler runs: (time.monotonic() when it started, the entry ids).
        self.handling: tuple[float, list[str]] | None = None

    @property
    def paused(self) -> bool:
        return self.pause.paused

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> None:
        logger.info("consumer %s: %s/%s as %s", self.spec.name, self.stream, self.group, self.consumer)
        failures = 0
        try:
            while not self.stop.is_set():
                try:
                    close_old_connections()
                    self.run_once()
                    failures = 0
                except UNAVAILABLE_ERRORS as exc:
                    delay = backoff(failures, base=0.2, cap=settings.WORKER_RETRY_CAP_S)
                    failures += 1
                    self._group_ready = False
                    logger.warning("consumer %s: Redis unavailable (%s); retry in %.1fs", self.spec.name, exc, delay)
                    self.stop.wait(delay)
        finally:
            connections.close_all()
            logger.info("consumer %s (%s) stopped", self.spec.name, self.consumer)

    def run_once(self) -> int:
        """One iteration: ensure the group, reclaim, read one batch, handle, ack (or,
        while paused, wait a pause check interval and read nothing)."""
        client = get_redis()
        if self.pause.check():
            self.stop.wait(self.pause.every_s)
            return 0
        self._ensure_group(client)
        handled = 0
        if self._read_own_pending:
            handled += self._recover_own_pending(client)
            self._read_own_pending = False
        now = time.monotonic()
        if now >= self._next_claim:
            handled += self._claim(client)
            self._next_claim = now + self.claim_every_s
        if self.pause.check():
            return handled
        entries = self._read(client, ">", block=True)
        handled += self._handle_entries(client, entries)
        if self.spec.linger_ms and 0 < len(entries) < self.spec.batch_size:
            self.stop.wait(self.spec.linger_ms / 1000)  # let the next batch gather
        if self.trims and now >= self._next_trim:
            self._trim()
            self._next_trim = now + settings.WORKER_TRIM_INTERVAL_S
        return handled

    # -- Redis plumbing -----------------------------------------------------------------
    def _ensure_group(self, client: redis.Redis) -> None:
        if self._group_ready:
            return
        try:
            client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            logger.info("created group %s on %s", self.group, self.stream)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True
        try:
            epoch_check(client, detected_by=f"consumer {self.spec.name} ({self.consumer})")
        except (redis.ResponseError, DatabaseError) as exc:  # the alarm must not stop the consuming
            logger.warning("consumer %s: cannot check the Redis epoch: %s", self.spec.name, exc)

    def _read(
        self, client: redis.Redis, start: str, block: bool = False, count: int | None = None
    ) -> list[PendingStreamEntry]:
        """XREADGROUP one batch; a `start` id other than ">" re-reads this consumer's own
        pending entries after it (which counts each one as delivered once more)."""
        try:
            response = client.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: start},
                count=count or self.spec.batch_size,
                block=self.block_ms if block else None,
            )
        except redis.ResponseError as exc:
            # Redis lost its data: NOGROUP on the next read, or, for a read blocked when the
            # stream vanished (FLUSHALL, DEL), "UNBLOCKED the stream key no longer exists"
            # (Redis 7). Recreate the group (which records the loss) and read again.
            if "NOGROUP" in str(exc) or str(exc).startswith("UNBLOCKED"):
                logger.warning(
                    "consumer %s: group %s is gone from %s; recreating it", self.spec.name, self.group, self.stream
                )
                self._group_ready = False
                self._read_own_pending = True
                return []
            raise
        if not response:
            return []
        return list(cast(XReadGroupReply, response)[0][1])  # the stub's union covers RESP3 and bytes replies

    def _recover_own_pending(self, client: redis.Redis) -> int:
        """Handle the entries this consumer name held when its process died, one at a time."""
        handled = 0
        cursor = "0"
        while not self.stop.is_set() and not self.pause.check():
            entries = self._read(client, cursor, count=1)
            if not entries:
                break
            cursor = entries[0][0]
            handled += self._handle_entries(client, entries, delivery_counts=self._delivery_counts(client, entries))
        return handled

    def _claim(self, client: redis.Redis) -> int:
        """Take over other consumers' entries idle for `claim_idle_ms`, one at a time."""
        handled = reclaimed = 0
        start = "0-0"
        while not self.stop.is_set() and not self.pause.check():
            try:
                start, entries, *_ = client.xautoclaim(
                    self.stream, self.group, self.consumer, self.claim_idle_ms, start_id=start, count=1
                )
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    self._group_ready = False
                    return handled
                raise
            if any(entry_id is None for entry_id, _ in entries):
                # Redis 6.2 answers (nil, nil) for a claimed entry that was trimmed away
                # and keeps it pending; 7.x drops such entries itself.
                entries = [entry for entry in entries if entry[0] is not None]
                self._ack_trimmed_pending(client)
            if entries:
                reclaimed += len(entries)
                handled += self._handle_entries(
                    client, entries, delivery_counts=self._delivery_counts(client, entries), reclaimed=len(entries)
                )
            if start == "0-0":
                break
        if reclaimed:
            logger.info("consumer %s reclaimed %d idle entries", self.spec.name, reclaimed)
        return handled

    def _delivery_counts(self, client: redis.Redis, entries: list[PendingStreamEntry]) -> dict[str, int]:
        """How often Redis has delivered each of `entries` that this consumer holds, this
        delivery included (XPENDING's times_delivered). An entry missing from the answer
        was claimed by another consumer meanwhile and is left to it."""
        counts = {}
        for entry_id, _ in entries:
            for info in cast(
                list[_PendingInfo],  # the stub types each value bytes | str | int
                client.xpending_range(
                    self.stream, self.group, min=entry_id, max=entry_id, count=1, consumername=self.consumer
                ),
            ):
                counts[info["message_id"]] = info["times_delivered"]
        return counts

    def _ack_trimmed_pending(self, client: redis.Redis) -> None:
        """Ack this consumer's pending entries that no longer exist in the stream."""
        pending = cast(
            list[_PendingInfo],
            client.xpending_range(self.stream, self.group, min="-", max="+", count=1000, consumername=self.consumer),
        )
        gone = [p["message_id"] for p in pending if not client.xrange(self.stream, p["message_id"], p["message_id"])]
        if gone:
            client.xack(self.stream, self.group, *gone)
            logger.warning(
                "consumer %s: acked %d pending entries trimmed from %s", self.spec.name, len(gone), self.stream
            )

    def _trim(self) -> None:
        try:
            trim_stream(self.stream)
            # Every live loop runs XAUTOCLAIM each claim_every_s, which resets its idle
            # time (an empty XREADGROUP does not): a consumer idle ten times as long is gone.
            remove_idle_consumers(self.stream, self.group, idle_ms=int(10_000 * self.claim_every_s))
        except redis.ResponseError as exc:
            logger.warning("trim of %s failed: %s", self.stream, exc)

    # -- handling -----------------------------------------------------------------------
    def _handle_entries(
        self,
        client: redis.Redis,
        entries: list[PendingStreamEntry],
        *,
        delivery_counts: dict[str, int] | None = None,
        reclaimed: int = 0,
    ) -> int:
        """Handle entries and ack them; without `delivery_counts` they are first deliveries
        (read with ">"), with it an entry missing from it is no longer ours and skipped."""
        if not entries:
            return 0
        outcome = _Outcome()
        events: list[Event] = []
        for entry_id, fields in entries:
            if not fields:  # deleted (trimmed) while pending
                outcome.ack.append(entry_id)
                continue
            count = 1 if delivery_counts is None else delivery_counts.get(entry_id)
            if count is None:
                continue
            try:
                event = Event.from_fields(fields, stream_id=entry_id, deliveries=count)
            except MalformedEvent as exc:
                outcome.dead.append((entry_id, fields, f"MalformedEvent: {exc}", count))
                continue
            if self.event_types is not None and event.type not in self.event_types:
                outcome.ack.append(entry_id)
                outcome.skipped += 1
                self._note_skipped(event.type)
                continue
            if count > self.max_deliveries:
                outcome.dead.append((entry_id, fields, f"delivered {count} times without success", count))
                continue
            events.append(event)
        self.handling = (time.monotonic(), [_entry_id(e) for e in events])
        try:
            if self.spec.batch and len(events) > 1:
                self._handle_batch(events, outcome)
            else:
                for event in events:
                    self._handle_one(event, outcome)
        except _Interrupted:
            logger.info("consumer %s: shutdown during a retry; leaving the rest un-acked", self.spec.name)
        finally:
            self.handling = None
        self._finish(client, outcome, reclaimed)
        return len(outcome.ack)

    def _note_skipped(self, event_type: str) -> None:
        """Log each type this loop skips once: a type no producer emits is most likely a
        renamed or misrouted one, so it is a warning; a known type is another consumer's."""
        if event_type in self._skipped_types:
            return
        self._skipped_types.add(event_type)
        if event_type in known_event_types():
            logger.info("consumer %s: skips %s events (not its type; counted as skipped)", self.spec.name, event_type)
        else:
            logger.warning(
                "consumer %s: skips %s events, a type no producer emits (renamed?); counted as skipped",
                self.spec.name,
                event_type,
            )

    def _handle_one(self, event: Event, outcome: _Outcome) -> None:
        attempts_left = max(1, self.max_deliveries - (event.deliveries - 1))

        def sleep(seconds: float) -> None:
            if self.stop.wait(seconds):
                raise _Interrupted

        def count_retry(state) -> None:
            outcome.retried += 1
            logger.warning(
                "consumer %s: event %s failed (attempt %d): %r; retrying",
                self.spec.name,
                event.id,
                state.attempt_number,
                state.outcome.exception(),
            )

        retrying = Retrying(
            stop=stop_after_attempt(attempts_left),
            wait=_wait_backoff(base=settings.WORKER_RETRY_BASE_S, cap=settings.WORKER_RETRY_CAP_S),
            retry=retry_if_not_exception_type((PermanentError, _Interrupted)),
            sleep=sleep,
            before_sleep=count_retry,
        )
        try:
            duplicates, outgoing = retrying(self._apply, [event])
            outcome.duplicates += duplicates
            outcome.outgoing.extend(outgoing)
            outcome.ack.append(_entry_id(event))
            outcome.processed += 1
            return
        except RetryError as exc:
            error = exc.last_attempt.exception()
        except _Interrupted:
            raise
        except Exception as exc:  # PermanentError: no retry
            error = exc
        attempts = retrying.statistics.get("attempt_number", 1) + event.deliveries - 1
        logger.error(
            "consumer %s: event %s dead-lettered after %d attempt(s): %r", self.spec.name, event.id, attempts, error
        )
        outcome.failed += 1
        outcome.dead.append((_entry_id(event), event.to_fields(), f"{type(error).__name__}: {error}", attempts))

    def _handle_batch(self, events: list[Event], outcome: _Outcome) -> None:
        """One try for the whole batch; on failure, each event alone with retries, so a
        bad event is isolated and the good ones of its batch still succeed."""
        try:
            duplicates, outgoing = self._apply(events)
        except Exception as exc:
            logger.warning(
                "consumer %s: batch of %d failed (%r); handling one by one", self.spec.name, len(events), exc
            )
            for event in events:
                self._handle_one(event, outcome)
            return
        outcome.duplicates += duplicates
        outcome.outgoing.extend(outgoing)
        outcome.ack.extend(_entry_id(e) for e in events)
        outcome.processed += len(events)

    @traced_apply  # a span per handler call, child of (or linked to) the producers' contexts
    def _apply(self, events: list[Event]) -> tuple[int, list[Outgoing]]:
        """Call the handler; with the inbox, skip already-applied events. Return the number
        of duplicates and the events the handler returned for sending with the ack."""
        unique = list({e.id: e for e in events}.values())
        duplicates = len(events) - len(unique)
        if not self.spec.inbox:
            return duplicates, list(self.handler(unique if self.spec.batch else unique[0]) or ())
        with transaction.atomic():
            seen = {
                str(i)
                for i in ProcessedEvent.objects.filter(
                    group=self.group, event_id__in=[e.id for e in unique]
                ).values_list("event_id", flat=True)
            }
            fresh = [e for e in unique if e.id not in seen]
            outgoing: list[Outgoing] = []
            if fresh:
                outgoing = list(self.handler(fresh if self.spec.batch else fresh[0]) or ())
                try:
                    with transaction.atomic():
                        ProcessedEvent.objects.bulk_create(
                            [ProcessedEvent(group=self.group, event_id=uuid.UUID(e.id)) for e in fresh]
                        )
                except IntegrityError as exc:
                    # Another consumer applied one of these meanwhile (a reclaim race):
                    # roll everything back and retry, which then skips it.
                    raise IntegrityError(f"concurrent delivery of an event: {exc}") from exc
            return duplicates + len(unique) - len(fresh), outgoing

    def _finish(self, client: redis.Redis, outcome: _Outcome, reclaimed: int) -> None:
        # On a Redis Cluster one MULTI may only touch the stream's slot (its dead letters and
        # metrics are hash-tagged into it, workers.keys). An outgoing event for a stream of
        # another slot is XADDed first, on its own: a crash before the ack re-sends it on
        # redelivery (a duplicate its reader must discard: replies carry their requestId),
        # never an ack without it.
        cluster = is_cluster(client)
        together: list[tuple[str, Outgoing]] = []
        elsewhere: list[tuple[str, Outgoing]] = []
        for out in outcome.outgoing:
            name = stream_name(out.stream)
            (elsewhere if cluster and not same_slot(self.stream, name) else together).append((name, out))
        if elsewhere:
            early = client.pipeline(transaction=False)
            for name, out in elsewhere:
                early.xadd(name, cast(XAddFields, out.event.to_fields()), maxlen=out.maxlen, approximate=True)
            early.execute()
        pipe = client.pipeline(transaction=True)
        for entry_id, fields, error, attempts in outcome.dead:
            dead_letter = stream_dead_letter(
                fields,
                error=error,
                attempts=attempts,
                stream=self.stream,
                group=self.group,
                entry_id=entry_id,
                consumer=self.spec.name,
            )
            pipe.xadd(self.dlq, cast(XAddFields, dead_letter))
        for name, out in together:
            pipe.xadd(name, cast(XAddFields, out.event.to_fields()), maxlen=out.maxlen, approximate=True)
        ack_ids = outcome.ack + [d[0] for d in outcome.dead]
        if ack_ids:
            pipe.xack(self.stream, self.group, *ack_ids)
        metrics.incr_consumer(
            pipe,
            self.spec.name,
            stream=self.stream,
            processed=outcome.processed,
            failed=outcome.failed,
            retried=outcome.retried,
            dead_lettered=len(outcome.dead),
            duplicates=outcome.duplicates,
            reclaimed=reclaimed,
            skipped=outcome.skipped,
        )
        if len(pipe):
            pipe.execute()
