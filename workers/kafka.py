"""Kafka → Redis ingest, the way a sink connector does it: batched, at-least-once.

One `KafkaIngestLoop` per consumer process (Kafka partitions, not threads, carry the
parallelism: more replicas in the same group share the partitions). Each iteration:

1. `consume(num_messages=batch_size)` one batch (offsets are neither auto-committed nor
   auto-stored);
2. the domain handler queues its Redis writes for the whole batch on one pipeline and
   returns the records it rejects; the loop queues those on the dead-letter stream
   `<topic>:dlq` (reason, topic, partition, offset, key, raw value) and the consumer
   counters on the same pipeline, and sends it: one round trip per batch, which Redis
   executes while the loop reads and decodes the next batch (the loop's Python and
   Redis's script then run at the same time instead of in turn; at most one batch is in
   flight, so batches reach Redis in order). On a single Redis the loop writes the
   pipeline itself and reads its replies when the next batch is ready
   (`workers.connection.SentPipeline`); a cluster pipeline runs on a writer thread;
3. only after that pipeline returned are the batch's offsets committed (synchronously),
   by the loop, once it has sent the next batch (so Redis works during the commit).

A crash between 2 and 3 replays the batch; the handler's writes must therefore be
idempotent (the telemetry upsert compares timestamps atomically, so a replay is a no-op).
Redis being unavailable (or any unexpected error) retries the same batch with capped,
jittered backoff and never commits past it; a handler that raises on some record is
retried record by record and the failing record is dead-lettered, so one bad message can
neither stop the consumer nor be skipped silently.

Stalls are reported, not only retried: when a batch has been failing for `stall_s`
(settings.WORKER_STALL_S; e.g. Redis answers OOM under `noeviction`, or READONLY as a
replica), the loop logs it at ERROR and marks the consumer stalled
(workers.heartbeat.consumer_stalled), so `worker_health kafka-ingest` fails with the reason;
the first batch written again clears it. The consumer lag itself is read from the broker
by the web process (`group_lag`, `KafkaLagMonitor`): it must stay visible precisely while
Redis, where the other counters live, refuses writes.

Shutdown: the stop event ends the loop after the batch in flight is written and committed;
`close()` then leaves the group so the partitions move at once. Partitions revoked by a
rebalance first get the batch in flight finished and the commit of anything written but
not yet committed; so does a pause.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, cast

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from django.conf import settings
from django.utils.module_loading import import_string

from . import metrics
from .backoff import backoff
from .connection import (
    REFUSED_WRITE_ERRORS,
    UNAVAILABLE_ERRORS,
    SentPipeline,
    XAddFields,
    get_redis,
    refused_write_reason,
)
from .deadletter import kafka_dead_letter
from .heartbeat import consumer_stalled
from .registry import KafkaSpec
from .steering import PauseFlag
from .trimming import trim_stream

logger = logging.getLogger(__name__)

# A constant: mypy cannot check a starred tuple written in an `except` clause.
_TRIM_ERRORS: tuple[type[Exception], ...] = (redis.ResponseError, *UNAVAILABLE_ERRORS)


class KafkaRecord(NamedTuple):
    """One consumed message. A tuple: made for every message, it costs 0.19 us where a
    frozen dataclass cost 0.47 (its __init__ sets each field through object.__setattr__)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record the handler will never accept (bad data): it goes to the dead-letter stream."""

    record: KafkaRecord
    reason: str


# handler(records, pipe) -> rejected: queue the Redis writes for the accepted records on
# `pipe` (do not execute it) and return the rejected ones. Called again with a fresh
# pipeline when the batch is retried, so it must not keep state between calls.
BatchHandler = Callable[[list[KafkaRecord], "redis.client.Pipeline"], list[Rejected]]


@dataclass(frozen=True)
class KafkaIngestSpec:
    name: str  # the consumer's name in `runworker` and in the metrics
    topic: str
    group: str
    bootstrap_servers: str
    handler: BatchHandler
    batch_size: int = 1000
    poll_timeout_s: float = 0.5
    session_timeout_ms: int = 6000
    dlq_stream: str | None = None  # default "<topic>:dlq"
    trim_streams: Sequence[str] = ()  # streams the handler writes to, trimmed periodically
    trim_interval_s: float = 30.0
    retry_cap_s: float = 5.0
    stall_s: float = 120.0  # no batch written for this long while records wait: stalled (0: never)
    config: dict[str, Any] = field(default_factory=dict)  # extra librdkafka settings (security, ...)

    @property
    def dlq(self) -> str:
        return self.dlq_stream or f"{self.topic}:dlq"

    def consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group,
            "client.id": f"{self.name}-{socket.gethostname()}-{os.getpid()}",
            # At-least-once: we commit explicit offsets, and only after the writes are durable.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # A short session lets a dead consumer's partitions move quickly and keeps the
            # group join short on brokers that wait for a session timeout (Tansu).
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": max(500, self.session_timeout_ms // 6),
            "topic.metadata.refresh.interval.ms": 30_000,
            "logger": logger,
            **self.config,
        }


def ingest_spec(entry: KafkaSpec) -> KafkaIngestSpec:
    """The ingest of a registry entry, with the project's Kafka and worker settings."""
    return KafkaIngestSpec(
        name=entry.name,
        topic=entry.topic,
        group=entry.group,
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        handler=import_string(entry.handler),
        batch_size=entry.batch_size,
        poll_timeout_s=settings.KAFKA_INGEST_POLL_TIMEOUT_S,
        session_timeout_ms=settings.KAFKA_SESSION_TIMEOUT_MS,
        trim_streams=tuple(settings.STREAMS[key] for key in entry.trim_streams),
        trim_interval_s=settings.WORKER_TRIM_INTERVAL_S,
        retry_cap_s=settings.WORKER_RETRY_CAP_S,
        stall_s=settings.WORKER_STALL_S,
        config=settings.KAFKA_CONSUMER_OPTIONS,
    )


def record_from_message(message: Any) -> KafkaRecord:
    return KafkaRecord(message.topic(), message.partition(), message.offset(), message.key(), message.value())


def dead_letter_fields(rejected: Rejected, *, consumer: str, group: str) -> dict[str, str]:
    record = rejected.record
    return kafka_dead_letter(
        reason=rejected.reason,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        consumer=consumer,
        group=group,
    )


class _Written(Protocol):
    def result(self) -> object: ...  # returns once the batch is written; raises what failed


@dataclass(frozen=True, slots=True)
class _SentBatch:
    """A batch's pipeline sent to Redis; `result()` reads its replies."""

    sent: SentPipeline
    then: Callable[[], None]

    def result(self) -> None:
        self.sent.result()
        self.then()


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A batch whose pipeline Redis is executing; committed once it returned."""

    records: list[KafkaRecord]
    written: _Written


class KafkaIngestLoop:
    def __init__(self, spec: KafkaIngestSpec, *, stop: threading.Event):
        self.spec = spec
        self.stop = stop
        self._consumer: Consumer | None = None
        self._writer: ThreadPoolExecutor | None = None  # started by run(); without it, writes are inline
        self._in_flight: _InFlight | None = None
        # Written to Redis, commit not yet confirmed: (topic, partition) -> next offset.
        self._uncommitted: dict[tuple[str, int], int] = {}
        self._next_trim = time.monotonic() + spec.trim_interval_s
        self.batches = 0
        self.records = 0
        self._last_progress = time.monotonic()
        self.stalled: str | None = None  # why, while stalled
        self.pause = PauseFlag(spec.name)
        self._partitions_paused = False

    @property
    def paused(self) -> bool:
        return self.pause.paused

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> None:
        spec = self.spec
        logger.info(
            "kafka ingest %s: topic %s, group %s at %s",
            spec.name,
            spec.topic,
            spec.group,
            spec.bootstrap_servers,
        )
        consumer = self._consumer = Consumer(spec.consumer_config())
        consumer.subscribe([spec.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{spec.name}-writer")
        try:
            while not self.stop.is_set():
                self.run_once()
        finally:
            # Everything written was committed (or its commit failed and it will be
            # replayed harmlessly); close() leaves the group so partitions move now.
            try:
                self._finish_in_flight()
            finally:
                self._writer.shutdown()
                self._writer = None
            try:
                consumer.close()
            except KafkaException as exc:
                logger.warning("kafka ingest %s: close failed: %s", spec.name, exc)
            logger.info("kafka ingest %s stopped after %d records", spec.name, self.records)

    def run_once(self) -> int:
        """Consume one batch and hand it to the writer, after committing the batch before it
        once its write returned. Return the number of records consumed."""
        if self._consumer is None:
            raise RuntimeError("the Kafka consumer is not started")
        if self._steer_pause():
            return 0
        # With a batch in flight, take what is already fetched rather than wait for more.
        timeout = 0 if self._in_flight is not None else self.spec.poll_timeout_s
        messages = self._consumer.consume(num_messages=self.spec.batch_size, timeout=timeout)
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(record_from_message(message))
            elif error.fatal():
                raise KafkaException(error)
            elif error.code() != KafkaError._PARTITION_EOF:
                logger.warning("kafka ingest %s: %s", self.spec.name, error)
        prepared: tuple[redis.client.Pipeline, list[Rejected]] | Exception | None = None
        if records:  # while Redis executes the batch in flight
            try:
                prepared = self._prepare(records)
            except Exception as exc:  # e.g. Redis away for a handler that reads: _write retries it
                prepared = exc
        flight, self._in_flight = self._in_flight, None
        written = None if flight is None else self._write(flight.records, first_attempt=flight.written)
        if prepared is not None and written is not False:
            self._submit(records, prepared)  # Redis starts on this batch ...
        # else: stopped with the batch before unwritten; this one is not committed either
        if flight is not None and written:
            self._done(flight.records)  # ... while the batch before is committed
        elif written is None and prepared is None:
            self._progressed()  # caught up: nothing waits
        self._maybe_trim()
        return len(records)

    def _submit(
        self, records: list[KafkaRecord], prepared: tuple[redis.client.Pipeline, list[Rejected]] | Exception
    ) -> None:
        written: _Written
        if not isinstance(prepared, Exception) and type(prepared[0]) is redis.client.Pipeline:
            # A single Redis: sent now, its replies read when the next batch is ready.
            pipe, rejected = prepared
            try:
                written = _SentBatch(SentPipeline(pipe), lambda: self._log_rejected(rejected))
            except Exception as exc:  # Redis away: the next round's _write retries the batch
                failed: Future[None] = Future()
                failed.set_exception(exc)
                written = failed
        elif isinstance(prepared, Exception) or self._writer is None:  # failed, or run_once() called on its own
            written = Future()
            try:
                if isinstance(prepared, Exception):
                    raise prepared
                self._run_pipeline(*prepared)
                written.set_result(None)
            except Exception as exc:
                written.set_exception(exc)
        else:
            written = self._writer.submit(self._run_pipeline, *prepared)
        self._in_flight = _InFlight(records, written)

    def _finish_in_flight(self) -> bool | None:
        """Wait for the batch in flight (retrying it if its write failed) and commit it.
        True when written, False when stopped before it could be, None when none was in flight."""
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return None
        if not self._write(flight.records, first_attempt=flight.written):
            return False
        self._done(flight.records)
        return True

    def _done(self, records: list[KafkaRecord]) -> None:
        """A written batch: commit its offsets and count it."""
        self._commit(records)
        self.batches += 1
        self.records += len(records)
        self._progressed()

    def _steer_pause(self) -> bool:
        """While an operator has paused the ingest (workers.steering): pause the assigned
        partitions and keep polling, which keeps the group session and the assignment
        (each round re-pauses, so partitions a rebalance assigned meanwhile are paused
        too); a record that arrives anyway is sought back to, so it is read after the
        resume. Resumed: resume the partitions; consuming goes on from where it stopped."""
        if self._consumer is None:
            raise RuntimeError("the Kafka consumer is not started")
        consumer = self._consumer
        if not self.pause.check():
            if self._partitions_paused:
                consumer.resume(consumer.assignment())
                self._partitions_paused = False
            return False
        self._finish_in_flight()
        assignment = consumer.assignment()
        if assignment:
            consumer.pause(assignment)
        self._partitions_paused = True
        message = consumer.poll(self.spec.poll_timeout_s)
        if message is not None and message.error() is None:
            record = record_from_message(message)
            consumer.seek(TopicPartition(record.topic, record.partition, record.offset))
            consumer.pause([TopicPartition(record.topic, record.partition)])
        self._progressed()  # paused is not stalled
        return True

    # -- writing ------------------------------------------------------------------------
    def _write(self, records: list[KafkaRecord], *, first_attempt: _Written | None = None) -> bool:
        """Write the batch (and its dead letters) until it succeeds; False if stopped first.
        `first_attempt`: the write already under way (sent, or on the writer thread), waited for
        before any retry."""
        failures = 0
        while True:
            attempt, first_attempt = first_attempt, None
            try:
                if attempt is not None:
                    attempt.result()
                else:
                    self._execute(records)
                return True
            except UNAVAILABLE_ERRORS as exc:
                reason = f"Redis unavailable ({exc})"
            except REFUSED_WRITE_ERRORS as exc:
                reason = refused_write_reason(exc)
            except Exception as exc:  # a Redis error reply or a handler bug: retried, never skipped
                logger.exception("kafka ingest %s: writing a batch of %d failed", self.spec.name, len(records))
                reason = repr(exc)
            delay = backoff(failures, base=0.2, cap=self.spec.retry_cap_s)
            failures += 1
            logger.warning("kafka ingest %s: %s; retrying the batch in %.1fs", self.spec.name, reason, delay)
            self._check_stall(len(records), reason)
            if self.stop.wait(delay):
                logger.info("kafka ingest %s: stopping with a batch unwritten; it will be redelivered", self.spec.name)
                return False

    def _execute(self, records: list[KafkaRecord]) -> None:
        self._run_pipeline(*self._prepare(records))

    def _run_pipeline(self, pipe: redis.client.Pipeline, rejected: list[Rejected]) -> None:
        pipe.execute()
        self._log_rejected(rejected)

    def _log_rejected(self, rejected: list[Rejected]) -> None:
        if rejected:
            logger.warning(
                "kafka ingest %s: %d record(s) dead-lettered to %s",
                self.spec.name,
                len(rejected),
                self.spec.dlq,
            )

    def _prepare(self, records: list[KafkaRecord]) -> tuple[redis.client.Pipeline, list[Rejected]]:
        """The batch's pipeline (the handler's writes, dead letters, counters), not executed."""
        pipe = get_redis().pipeline(transaction=False)
        try:
            rejected = self.spec.handler(records, pipe)
        except UNAVAILABLE_ERRORS:
            raise
        except Exception as exc:
            logger.warning(
                "kafka ingest %s: handler failed on the batch (%r); isolating the record", self.spec.name, exc
            )
            pipe = get_redis().pipeline(transaction=False)
            rejected = self._handle_one_by_one(records, pipe)
        for item in rejected:
            fields = dead_letter_fields(item, consumer=self.spec.name, group=self.spec.group)
            pipe.xadd(self.spec.dlq, cast(XAddFields, fields))
        metrics.incr_consumer(pipe, self.spec.name, processed=len(records) - len(rejected), dead_lettered=len(rejected))
        return pipe, rejected

    def _handle_one_by_one(self, records: list[KafkaRecord], pipe: redis.client.Pipeline) -> list[Rejected]:
        rejected: list[Rejected] = []
        for record in records:
            queued = len(pipe)
            try:
                rejected.extend(self.spec.handler([record], pipe))
            except UNAVAILABLE_ERRORS:
                raise
            except Exception as exc:
                del pipe.command_stack[queued:]  # drop whatever the failing call queued
                rejected.append(Rejected(record, f"handler error: {exc!r}"))
        return rejected

    # -- progress ---------------------------------------------------------------------
    def _progressed(self) -> None:
        self._last_progress = time.monotonic()
        if self.stalled is not None:
            logger.warning("kafka ingest %s: progressing again (was stalled: %s)", self.spec.name, self.stalled)
            self.stalled = None
            consumer_stalled(self.spec.name, None)

    def _check_stall(self, waiting: int, reason: str) -> None:
        idle = time.monotonic() - self._last_progress
        if self.stalled is not None or not self.spec.stall_s or idle < self.spec.stall_s:
            return
        self.stalled = f"no progress for {idle:.0f}s with {waiting} record(s) waiting: {reason}"
        logger.error("kafka ingest %s STALLED: %s", self.spec.name, self.stalled)
        consumer_stalled(self.spec.name, self.stalled)

    # -- committing ---------------------------------------------------------------------
    def _commit(self, records: list[KafkaRecord]) -> None:
        for record in records:
            key = (record.topic, record.partition)
            if record.offset + 1 > self._uncommitted.get(key, -1):
                self._uncommitted[key] = record.offset + 1
        self._commit_uncommitted()

    def _commit_uncommitted(self, only: set[tuple[str, int]] | None = None) -> None:
        if self._consumer is None:
            raise RuntimeError("the Kafka consumer is not started")
        keys = [key for key in self._uncommitted if only is None or key in only]
        if not keys:
            return
        offsets = [TopicPartition(topic, partition, self._uncommitted[(topic, partition)]) for topic, partition in keys]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # A rebalance took the partition: its new owner replays from the last commit,
            # which the idempotent writes make harmless.
            logger.warning("kafka ingest %s: offset commit failed (%s); records will be replayed", self.spec.name, exc)
            return
        for key in keys:
            self._uncommitted.pop(key, None)

    # -- rebalancing --------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("kafka ingest %s: assigned %s", self.spec.name, _describe(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("kafka ingest %s: revoked %s", self.spec.name, _describe(partitions))
        self._finish_in_flight()
        self._commit_uncommitted({(p.topic, p.partition) for p in partitions})
        for p in partitions:
            self._uncommitted.pop((p.topic, p.partition), None)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.warning("kafka ingest %s: lost %s (already reassigned)", self.spec.name, _describe(partitions))
        for p in partitions:
            self._uncommitted.pop((p.topic, p.partition), None)

    # -- housekeeping -------------------------------------------------------------------
    def _maybe_trim(self) -> None:
        now = time.monotonic()
        if not self.spec.trim_streams or now < self._next_trim:
            return
        self._next_trim = now + self.spec.trim_interval_s
        for stream in self.spec.trim_streams:
            try:
                trim_stream(stream)
            except _TRIM_ERRORS as exc:
                logger.warning("kafka ingest %s: trimming %s failed: %s", self.spec.name, stream, exc)


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"


# -- consumer lag, read from the broker ------------------------------------------------
@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    group: str
    committed: int | None  # None: the group has committed nothing on this partition
    high_watermark: int
    lag: int  # records the group has not committed yet


def group_lag(consumer: Consumer, *, group: str, topic: str, timeout_s: float) -> list[PartitionLag]:
    """Committed offset vs high watermark of every partition of `topic` for `group`.

    `consumer` must have `group.id` = `group` and must not be subscribed (it then only
    asks the group coordinator, without joining the group). A partition the group never
    committed counts from its low watermark (the ingest starts at `earliest`).
    """
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return []
    partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
    committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=timeout_s)}
    lags = []
    for tp in partitions:
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
        offset = committed.get(tp.partition, -1)
        start = offset if offset >= 0 else low
        lags.append(
            PartitionLag(topic, tp.partition, group, offset if offset >= 0 else None, high, max(0, high - start))
        )
    return lags


@dataclass(frozen=True)
class LagReading:
    ok: bool  # the broker answered (else `error`, and the last good partitions are not reported)
    partitions: list[PartitionLag]
    stalled: dict[int, float]  # partition → seconds its committed offset has not moved while lagging
    error: str = ""


class KafkaLagMonitor:
    """The ingest's lag for /metrics, read from the broker at most every `cache_s`.

    One metadata-only consumer per process (creating one per scrape costs a connection and
    a coordinator lookup), each call bounded by `timeout_s` so a broker outage cannot hang
    a scrape; the last reading (or failure) is served from the cache in between. It also
    remembers when each partition's committed offset last moved, so a partition that lags
    without moving for `stall_s` is reported stalled by any web replica that watched it.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group: str,
        topic: str,
        timeout_s: float,
        cache_s: float,
        stall_s: float,
        config: dict[str, Any] | None = None,
    ):
        self.bootstrap_servers, self.group, self.topic = bootstrap_servers, group, topic
        self.timeout_s, self.cache_s, self.stall_s = timeout_s, cache_s, stall_s
        self.config = config or {}
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None
        self._reading: LagReading | None = None
        self._read_at = 0.0
        self._moved: dict[int, tuple[int | None, float]] = {}  # partition → (committed, since)

    def read(self) -> LagReading:
        with self._lock:
            now = time.monotonic()
            if self._reading is None or now - self._read_at >= self.cache_s:
                self._reading = self._read(now)
                self._read_at = time.monotonic()
            return self._reading

    def _read(self, now: float) -> LagReading:
        try:
            if self._consumer is None:
                self._consumer = Consumer(
                    {
                        "bootstrap.servers": self.bootstrap_servers,
                        "group.id": self.group,
                        "enable.auto.commit": False,
                        "socket.timeout.ms": max(1000, int(self.timeout_s * 1000)),
                        "logger": logger,
                        "log_level": 3,  # errors only: an unreachable broker is reported by the metric
                        **self.config,
                    }
                )
            partitions = group_lag(self._consumer, group=self.group, topic=self.topic, timeout_s=self.timeout_s)
        except KafkaException as exc:
            return LagReading(False, [], {}, str(exc))
        stalled = {}
        for item in partitions:
            committed, since = self._moved.get(item.partition, (item.committed, now))
            if committed != item.committed or not item.lag:
                since = now
            self._moved[item.partition] = (item.committed, since)
            if item.lag and now - since >= self.stall_s:
                stalled[item.partition] = now - since
        return LagReading(True, partitions, stalled)

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
