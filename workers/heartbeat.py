"""Heartbeat files: how a worker without a port tells its healthcheck it is alive.

`Runner` touches `<WORKER_HEARTBEAT_DIR>/<entry>.heartbeat` every half second while all
its threads are alive: the file's mtime says "this process runs and none of its threads
has died". A thread that is alive but makes no progress reports it with
`consumer_stalled(name, reason)`; the file's text then says `stalled: <reason>` until it
reports `None`. The runner adds its own notes (`Heartbeats.beat(notes)`): `stuck: …` (a
handler past its time limit: unhealthy) or `paused` (an operator paused it: healthy).
`manage.py worker_health <name>` reads both.

Each process also reports its entries in Redis, so any web process can show how many
replicas of a consumer are alive, on every host: one hash per entry,
`replicas_key(name)`, a field per process (`<host>-<pid>`) holding when it last reported
and its state (running, paused, stuck), refreshed every second; a field older than
WORKER_REPLICA_TTL_S is a replica that is gone (one hash per entry rather than a key per
process with a TTL: reading it needs no SCAN, which a Redis Cluster would make per node).
`rate_sample()` keeps a minute of readings of the processed counter per entry, from
which `processing_rate()` derives events per second.
"""

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import redis
from django.conf import settings

from .metrics import consumer_counters

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

    def beat(self, notes: dict[str, str] | None = None) -> None:
        """Touch every file, or write why its entry is stalled or the runner's note for
        it (`stuck: …`, `paused`); nothing without a directory."""
        directory = getattr(settings, "WORKER_HEARTBEAT_DIR", "")
        if not directory:
            return
        with _stalled_lock:
            texts = {name: f"stalled: {reason}" for name, reason in _stalled.items()}
        for name, note in (notes or {}).items():
            if note.startswith("stuck") or name not in texts:  # stuck says most; paused least
                texts[name] = note
        try:
            os.makedirs(directory, exist_ok=True)
            for name in self.names:
                path = heartbeat_path(name)
                if name in texts:
                    path.write_text(f"{texts[name]}\n")
                    self._reported_stalled.add(name)
                elif name in self._reported_stalled:
                    path.write_text("")
                    self._reported_stalled.discard(name)
                else:
                    path.touch()
        except OSError as exc:
            logger.warning("cannot write the heartbeat in %s: %s", directory, exc)


def replicas_key(name: str) -> str:
    """The Redis hash of entry `name`'s live processes: `<host>-<pid>` → JSON report."""
    return f"workers:replicas:{name}"


def rate_key(name: str) -> str:
    """The Redis sorted set of entry `name`'s processed-counter readings (score: time)."""
    return f"workers:rate:{name}"


def replicas_report(client: redis.Redis, replica: str, states: dict[str, str], *, prune: bool = False) -> None:
    """Report this process's entries (name → running | paused | stuck) in one pipeline;
    with `prune`, first drop the fields of processes that stopped reporting."""
    now = time.time()
    ttl = settings.WORKER_REPLICA_TTL_S
    if prune:
        for name in states:
            reports = cast(dict[str, str], client.hgetall(replicas_key(name)))  # a decode_responses client
            stale = [field for field, raw in reports.items() if _age(raw, now) > ttl]
            if stale:
                client.hdel(replicas_key(name), *stale)
    pipe = client.pipeline(transaction=False)
    for name, state in states.items():
        pipe.hset(replicas_key(name), replica, json.dumps({"at": now, "state": state}))
        pipe.expire(replicas_key(name), int(ttl * 3) + 1)  # the whole hash goes once every replica has
    pipe.execute()


def _age(raw: str, now: float) -> float:
    try:
        return now - float(json.loads(raw)["at"])
    except (ValueError, KeyError, TypeError):
        return float("inf")


def live_replicas(name: str, client: redis.Redis) -> dict[str, str]:
    """The processes running entry `name` that reported within WORKER_REPLICA_TTL_S: id → state."""
    now = time.time()
    live = {}
    for replica, raw in cast(dict[str, str], client.hgetall(replicas_key(name))).items():
        if _age(raw, now) <= settings.WORKER_REPLICA_TTL_S:
            live[replica] = json.loads(raw).get("state", "running")
    return live


RATE_WINDOW_S = 60.0


def rate_sample(client: redis.Redis, names: Iterable[str]) -> None:
    """Record the processed counter of each entry now, keeping two minutes of readings."""
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for name in names:
        processed = consumer_counters(name)["processed"]
        pipe.zadd(rate_key(name), {f"{now:.3f}:{processed}": now})
        pipe.zremrangebyscore(rate_key(name), "-inf", now - 2 * RATE_WINDOW_S)
        pipe.expire(rate_key(name), int(4 * RATE_WINDOW_S))
    pipe.execute()


def processing_rate(name: str, client: redis.Redis) -> float | None:
    """Events per second over (about) the last minute, from the oldest reading in the
    window to the counter now; None without a reading (no replica ran lately)."""
    now = time.time()
    readings = cast(list[str], client.zrangebyscore(rate_key(name), now - RATE_WINDOW_S, "+inf", start=0, num=1))
    if not readings:
        return None
    taken_at, processed = readings[0].split(":")
    elapsed = now - float(taken_at)
    if elapsed <= 0:
        return None
    return max(0.0, (consumer_counters(name)["processed"] - int(processed)) / elapsed)
