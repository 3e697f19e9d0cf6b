"""The periodic loop: a registry `PeriodicSpec`'s tick, called every interval until stopped.

The relay, the email re-queue and the reconciler are this loop around one function of
their own. Each round closes stale database connections first (a long-running thread
outlives CONN_MAX_AGE), then calls the tick; Redis or the database being away is logged
and the next round retries. With `again_while_busy`, a tick that did work is followed by
the next one at once, the stop event checked in between, so a backlog drains without
waiting an interval per batch and a shutdown still ends it at a batch boundary. A paused
entry (workers.steering) skips its rounds, from the next one, until it is resumed.
"""

import logging
import threading

from django.db import DatabaseError, close_old_connections, connections

from .connection import UNAVAILABLE_ERRORS
from .registry import PeriodicSpec
from .steering import PauseFlag

logger = logging.getLogger(__name__)

# A constant: mypy cannot check a starred tuple written in an `except` clause.
_ROUND_ERRORS: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, DatabaseError)


class PeriodicLoop:
    def __init__(self, spec: PeriodicSpec, *, stop: threading.Event):
        self.spec = spec
        self.stop = stop
        self.tick = spec.load_tick()
        self.pause = PauseFlag(spec.name)

    @property
    def paused(self) -> bool:
        return self.pause.paused

    def run(self) -> None:
        logger.info("%s: every %.1fs: %s", self.spec.name, self.spec.interval_s, self.spec.description)
        try:
            while not self.stop.is_set():
                if self.pause.check():
                    self.stop.wait(self.pause.every_s)
                    continue
                self.run_once()
                self.stop.wait(self.spec.interval_s)
        finally:
            connections.close_all()

    def run_once(self) -> object:
        """One round: the tick (again at once while it is busy); its last result."""
        close_old_connections()
        try:
            result = self.tick()
            while self.spec.again_while_busy and result and not self.stop.is_set():
                result = self.tick()
        except _ROUND_ERRORS as exc:  # Redis or the database away: the next round retries
            logger.warning("%s: %s", self.spec.name, exc)
            return None
        return result
