"""The worker process: runs registry entries in threads until SIGTERM.

`Runner` starts one thread per consumer loop (a stream consumer's `concurrency` threads,
each its own consumer in the group) and one per other entry, writes the heartbeat files
while every thread is alive, and stops the whole process when one thread dies so the
supervisor restarts it.

Every half second its main thread is also the watchdog of the stream consumers' handlers:
a loop whose handler has run longer than its `handler_timeout_s` (the registry; default
WORKER_HANDLER_TIMEOUT_S) is stuck. Python cannot kill a thread, so the remedy is to say
so and let the supervisor restart the process: an ERROR line with the entry ids (once per
stuck call), `consumer_handler_overruns_total` counted, `consumer_stuck` set, and the
heartbeat file says `stuck: …`, so `worker_health` fails (Docker marks the container
unhealthy, Kubernetes' liveness probe restarts it). The entries stay un-acked, and another
consumer reclaims them after the claim idle time. A handler that finishes late after all
acks its entries as usual and the entry turns healthy again.

Every second each process also reports its entries' state (running, paused, stuck) in
Redis, and every five seconds a reading of their processed counters, for the streams page
(workers.heartbeat).

SIGTERM (or SIGINT) sets the stop event: every loop finishes and acks its batch, then the
process exits. A second signal exits at once; un-acked entries are reclaimed by another
consumer after the idle time.
"""

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from typing import Protocol

import redis

from .connection import UNAVAILABLE_ERRORS, get_redis
from .consumer import ConsumerLoop, default_consumer_name
from .heartbeat import Heartbeats, rate_sample, replicas_report
from .kafka import KafkaIngestLoop, ingest_spec
from .metrics import consumer_key
from .periodic import PeriodicLoop
from .registry import ConsumerSpec, Entry, KafkaSpec

logger = logging.getLogger(__name__)

REPORT_EVERY_S = 1.0
RATE_SAMPLE_EVERY_S = 5.0
PRUNE_EVERY_S = 60.0
# Reporting never stops the work: Redis away, out of memory or read-only is only logged.
_REPORT_ERRORS: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, redis.RedisError)


class Loop(Protocol):
    @property
    def paused(self) -> bool: ...

    def run(self) -> None: ...


class Runner:
    """Runs registry entries in threads: a stream consumer's `concurrency` loops, one
    thread for each other entry."""

    def __init__(self, entries: Sequence[Entry], *, consumer_name: str | None = None):
        self.stop = threading.Event()
        self.loops: list[tuple[str, Loop]] = []
        for entry in entries:
            if isinstance(entry, ConsumerSpec):
                for index in range(entry.concurrency):
                    name = f"{consumer_name}-{index}" if consumer_name else default_consumer_name(index)
                    loop = ConsumerLoop(entry, stop=self.stop, consumer=name, trims=index == 0)
                    self.loops.append((entry.name, loop))
            elif isinstance(entry, KafkaSpec):
                self.loops.append((entry.name, KafkaIngestLoop(ingest_spec(entry), stop=self.stop)))
            else:
                self.loops.append((entry.name, PeriodicLoop(entry, stop=self.stop)))
        self._signals = 0
        self.heartbeats = Heartbeats(name for name, _ in self.loops)
        self.replica = consumer_name or f"{socket.gethostname()}-{os.getpid()}"
        self._overruns_reported: set[tuple[int, float]] = set()  # (loop, handling since) already logged
        self._next_report = self._next_rate = self._next_prune = 0.0

    def _on_signal(self, signum, frame) -> None:
        self._signals += 1
        if self._signals == 1:
            logger.info("signal %s: finishing the current batch, then exiting (again to exit now)", signum)
            self.stop.set()
        else:
            logger.warning("second signal: exiting now; un-acked entries will be reclaimed")
            os._exit(128 + signum)

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def run(self) -> None:
        threads = [threading.Thread(target=loop.run, name=name, daemon=True) for name, loop in self.loops]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.5)
            if not self.stop.is_set() and all(t.is_alive() for t in threads):
                states = self.watch()
                self.heartbeats.beat({n: s for n, s in states.items() if s != "running"})
                self._report({n: s.split(":", 1)[0] for n, s in states.items()})
            if not self.stop.is_set() and not all(t.is_alive() for t in threads):
                logger.error("a worker thread died; stopping the worker so the supervisor restarts it")
                self.stop.set()

    def watch(self) -> dict[str, str]:
        """Each entry's state: `stuck: …` if a loop's handler overran its limit (logged and
        counted once per call), `paused` if every loop is paused, else `running`."""
        now = time.monotonic()
        stuck: dict[str, str] = {}
        paused: dict[str, bool] = {}
        for name, loop in self.loops:
            paused[name] = paused.get(name, True) and loop.paused
            if not isinstance(loop, ConsumerLoop) or loop.handling is None:
                continue
            since, entry_ids = loop.handling
            running_s = now - since
            if running_s <= loop.handler_timeout_s:
                continue
            stuck[name] = (
                f"stuck: {loop.consumer}'s handler has run {running_s:.0f}s, past its {loop.handler_timeout_s:g}s"
                f" limit, on entries {', '.join(entry_ids)}"
            )
            if (id(loop), since) not in self._overruns_reported:
                self._overruns_reported.add((id(loop), since))
                logger.error(
                    "consumer %s (%s) STUCK: handler running %.0fs, past its %gs limit, on entries %s of %s;"
                    " not acked (another consumer reclaims them); worker_health now fails so the supervisor"
                    " restarts this worker",
                    name,
                    loop.consumer,
                    running_s,
                    loop.handler_timeout_s,
                    ", ".join(entry_ids),
                    loop.stream,
                )
                try:
                    get_redis().hincrby(consumer_key(name), "handler_overruns", 1)
                except _REPORT_ERRORS as exc:
                    logger.warning("cannot count the overrun of %s: %s", name, exc)
        return {name: stuck.get(name) or ("paused" if paused[name] else "running") for name in paused}

    def _report(self, states: dict[str, str]) -> None:
        """Report the entries' states (every second) and their counters (every 5 s) to Redis."""
        now = time.monotonic()
        if now < self._next_report:
            return
        self._next_report = now + REPORT_EVERY_S
        try:
            client = get_redis()
            replicas_report(client, self.replica, states, prune=now >= self._next_prune)
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY_S
            if now >= self._next_rate:
                self._next_rate = now + RATE_SAMPLE_EVERY_S
                rate_sample(client, states)
        except _REPORT_ERRORS as exc:
            logger.debug("cannot report to Redis: %s", exc)
