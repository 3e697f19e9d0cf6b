"""The worker process: runs registry entries in threads until SIGTERM.

`Runner` starts one thread per consumer loop (a stream consumer's `concurrency` threads,
each its own consumer in the group) and one per other entry, writes the heartbeat files
while every thread is alive, and stops the whole process when one thread dies so the
supervisor restarts it.

SIGTERM (or SIGINT) sets the stop event: every loop finishes and acks its batch, then the
process exits. A second signal exits at once; un-acked entries are reclaimed by another
consumer after the idle time.
"""

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence

from .consumer import ConsumerLoop, default_consumer_name
from .heartbeat import Heartbeats
from .kafka import KafkaIngestLoop, ingest_spec
from .periodic import PeriodicLoop
from .registry import ConsumerSpec, Entry, KafkaSpec

logger = logging.getLogger(__name__)


class Runner:
    """Runs registry entries in threads: a stream consumer's `concurrency` loops, one
    thread for each other entry."""

    def __init__(self, entries: Sequence[Entry], *, consumer_name: str | None = None):
        self.stop = threading.Event()
        self.loops: list[tuple[str, Callable[[], None]]] = []
        for entry in entries:
            if isinstance(entry, ConsumerSpec):
                for index in range(entry.concurrency):
                    name = f"{consumer_name}-{index}" if consumer_name else default_consumer_name(index)
                    loop = ConsumerLoop(entry, stop=self.stop, consumer=name, trims=index == 0)
                    self.loops.append((entry.name, loop.run))
            elif isinstance(entry, KafkaSpec):
                self.loops.append((entry.name, KafkaIngestLoop(ingest_spec(entry), stop=self.stop).run))
            else:
                self.loops.append((entry.name, PeriodicLoop(entry, stop=self.stop).run))
        self._signals = 0
        self.heartbeats = Heartbeats(name for name, _ in self.loops)

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
        threads = [threading.Thread(target=run, name=name, daemon=True) for name, run in self.loops]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.5)
            if not self.stop.is_set() and all(t.is_alive() for t in threads):
                self.heartbeats.beat()
            if not self.stop.is_set() and not all(t.is_alive() for t in threads):
                logger.error("a worker thread died; stopping the worker so the supervisor restarts it")
                self.stop.set()
