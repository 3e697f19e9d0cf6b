"""Heartbeat files: how a worker without a port tells its healthcheck it is alive.

`Runner` touches `<WORKER_HEARTBEAT_DIR>/<entry>.heartbeat` every half second while all
its threads are alive: the file's mtime says "this process runs and none of its threads
has died". A thread that is alive but makes no progress reports it with
`consumer_stalled(name, reason)`; the file's text then says `stalled: <reason>` until it
reports `None`. `manage.py worker_health <name>` reads both.
"""

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

# Entries of this process whose thread is alive but makes no progress: name → reason.
_stalled: dict[str, str] = {}
_stalled_lock = threading.Lock()


def heartbeat_path(name: str) -> Path:
    """The file `runworker` touches while it runs `name` (settings.WORKER_HEARTBEAT_DIR)."""
    return Path(settings.WORKER_HEARTBEAT_DIR) / f"{name}.heartbeat"


def consumer_stalled(name: str, reason: str | None) -> None:
    """A consumer thread reports that it is stalled (`reason`) or no longer (None).

    While it is, its heartbeat file says `stalled: <reason>` instead of being empty, and
    `manage.py worker_health <name>` fails with that reason: a live thread that retries
    forever is not healthy (the Kafka ingest reports this when Redis refuses its writes).
    """
    with _stalled_lock:
        if reason is None:
            _stalled.pop(name, None)
        else:
            _stalled[name] = reason


class Heartbeats:
    """The heartbeat files of one process's entries."""

    def __init__(self, names: Iterable[str]):
        self.names = sorted(set(names))
        self._reported_stalled: set[str] = set()

    def beat(self) -> None:
        """Touch every file, or write why its entry is stalled (nothing without a directory)."""
        directory = getattr(settings, "WORKER_HEARTBEAT_DIR", "")
        if not directory:
            return
        with _stalled_lock:
            stalled = dict(_stalled)
        try:
            os.makedirs(directory, exist_ok=True)
            for name in self.names:
                path = heartbeat_path(name)
                if name in stalled:
                    path.write_text(f"stalled: {stalled[name]}\n")
                    self._reported_stalled.add(name)
                elif name in self._reported_stalled:
                    path.write_text("")
                    self._reported_stalled.discard(name)
                else:
                    path.touch()
        except OSError as exc:
            logger.warning("cannot write the heartbeat in %s: %s", directory, exc)
