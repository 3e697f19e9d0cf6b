"""What an operator wants to see of each stream: length, groups, consumers, pending,
lag and dead letters. Read by the streams API, the admin page and /metrics."""

from dataclasses import asdict, dataclass, field

import redis
from django.conf import settings

from .connection import get_redis
from .deadletter import dead_letter_stream
from .registry import CONSUMERS


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
