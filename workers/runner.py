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

from django.utils.module_loading import import_string

from .consumer import ConsumerLoop, default_consumer_name
from .heartbeat import Heartbeats
from .registry import EXTERNAL_CONSUMERS, ConsumerSpec

logger = logging.getLogger(__name__)


class Runner:
    """Runs consumer loops (and external consumers such as the Kafka ingest) in threads."""

    def __init__(
        self, specs: list[ConsumerSpec], external: list[str] | None = None, *, consumer_name: str | None = None
    ):
        self.stop = threading.Event()
        self.loops: list[ConsumerLoop] = []
        for spec in specs:
            for index in range(spec.concurrency):
                name = f"{consumer_name}-{index}" if consumer_name else default_consumer_name(index)
                self.loops.append(ConsumerLoop(spec, stop=self.stop, consumer=name, trims=index == 0))
        self.external = [(name, import_string(EXTERNAL_CONSUMERS[name])) for name in external or []]
        self._signals = 0
        self.heartbeats = Heartbeats([*(loop.spec.name for loop in self.loops), *(name for name, _ in self.external)])

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
        threads = [threading.Thread(target=loop.run, name=f"{loop.spec.name}", daemon=True) for loop in self.loops]
        threads += [
            threading.Thread(target=run, args=(self.stop,), name=name, daemon=True) for name, run in self.external
        ]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.5)
            if not self.stop.is_set() and all(t.is_alive() for t in threads):
                self.heartbeats.beat()
            if not self.stop.is_set() and not all(t.is_alive() for t in threads):
                logger.error("a consumer thread died; stopping the worker so the supervisor restarts it")
                self.stop.set()
