"""A handler for the failover test: records every event id it is given, in this process."""

import threading

from workers.events import Event

SEEN: list[str] = []
_lock = threading.Lock()


def record(event: Event) -> None:
    with _lock:
        SEEN.append(event.id)
