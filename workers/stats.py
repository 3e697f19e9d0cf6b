"""What an operator wants to see of each stream: length, groups, consumers, pending,
lag and dead letters; and of each registry entry: its replicas, whether it is paused,
its processing rate, the oldest pending entry, lag and dead letters (`consumer_overview`).
Read by the streams and consumers APIs, the admin page and /metrics."""

import time
from dataclasses import asdict, dataclass, field

import redis
from django.conf import settings

from .connection import get_redis
from .deadletter import dead_letter_stream
from .heartbeat import live_replicas, processing_rate
from .registry import CONSUMERS, ConsumerSpec, all_entries
from .steering import PauseState, pause_states


@dataclass
class GroupStats:
    name: str
    consumers: int
    pending: int
    lag: int | None
    last_delivered_id: str


@dataclass
class StreamStats:
    stream: str
    length: int
    dead_letters: int
    first_entry_id: str | None
    last_entry_id: str | None
    groups: list[GroupStats] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def known_streams() -> list[str]:
    """Every stream in settings.STREAMS and the registry, in a stable order."""
    names = dict.fromkeys(settings.STREAMS.values())
    names.update(dict.fromkeys(spec.stream_name for spec in CONSUMERS.values()))
    return list(names)


def stream_stats(stream: str, client: redis.Redis | None = None) -> StreamStats:
    client = client or get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream)
    pipe.xlen(dead_letter_stream(stream))
    pipe.xrange(stream, count=1)
    pipe.xrevrange(stream, count=1)
    length, dead, first, last = pipe.execute()
    groups = []
    if length or client.exists(stream):
        for group in client.xinfo_groups(stream):
            groups.append(
                GroupStats(
                    name=group["name"],
                    consumers=group["consumers"],
                    pending=group["pending"],
                    lag=group.get("lag"),
                    last_delivered_id=group["last-delivered-id"],
                )
            )
    return StreamStats(
        stream=stream,
        length=length,
        dead_letters=dead,
        first_entry_id=first[0][0] if first else None,
        last_entry_id=last[0][0] if last else None,
        groups=groups,
    )


def all_stream_stats() -> list[StreamStats]:
    client = get_redis()
    return [stream_stats(name, client) for name in known_streams()]


@dataclass
class ConsumerOverview:
    name: str
    kind: str
    stream: str | None  # None: not a stream consumer
    group: str | None
    paused: bool
    paused_by: str
    paused_reason: str
    replicas: int  # processes that reported within WORKER_REPLICA_TTL_S
    stuck_replicas: int
    rate_per_s: float | None  # processed events per second over the last minute
    oldest_pending_age_s: float | None
    pending: int | None
    lag: int | None
    dead_letters: int | None  # entries in the stream's dead-letter stream

    def as_dict(self) -> dict:
        return asdict(self)


def consumer_overview(client: redis.Redis | None = None) -> list[ConsumerOverview]:
    """Every registry entry, as the streams page shows it (a few round trips per entry)."""
    client = client or get_redis()
    states: dict[str, PauseState] = pause_states()
    rows = []
    now = time.time()
    for entry in all_entries():
        replicas = live_replicas(entry.name, client)
        state = states[entry.name]
        row = ConsumerOverview(
            name=entry.name,
            kind=entry.kind,
            stream=None,
            group=None,
            paused=state.paused,
            paused_by=state.changed_by if state.paused else "",
            paused_reason=state.reason,
            replicas=len(replicas),
            stuck_replicas=sum(1 for s in replicas.values() if s == "stuck"),
            rate_per_s=processing_rate(entry.name, client),
            oldest_pending_age_s=None,
            pending=None,
            lag=None,
            dead_letters=None,
        )
        if isinstance(entry, ConsumerSpec):
            row.stream, row.group = entry.stream_name, entry.group_name
            _fill_stream_figures(row, entry, client, now)
        rows.append(row)
    return rows


def _fill_stream_figures(row: ConsumerOverview, spec: ConsumerSpec, client: redis.Redis, now: float) -> None:
    row.dead_letters = client.xlen(dead_letter_stream(spec.stream_name))
    try:
        groups = {g["name"]: g for g in client.xinfo_groups(spec.stream_name)}
    except redis.ResponseError:  # no such stream yet
        return
    group = groups.get(spec.group_name)
    if group is None:
        return
    row.pending, row.lag = group["pending"], group.get("lag")
    summary = client.xpending(spec.stream_name, spec.group_name)
    row.oldest_pending_age_s = 0.0
    if summary["pending"] and summary["min"]:
        row.oldest_pending_age_s = max(0.0, now - int(summary["min"].split("-")[0]) / 1000)
