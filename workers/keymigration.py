"""One-off: move the companion keys of a single Redis from the names before hash tags.

Before Redis Cluster support, a stream's dead letters were `<stream>:dlq` and the metric
hashes `workers:metrics:stream:<stream>` and `workers:metrics:consumer:<name>`; they are
now `{<stream>}:dlq`, `{<stream>}:metrics` and `{<stream>}:metrics:consumer:<name>`
(workers.keys). `manage.py migrate_redis_keys` renames what it finds; where the new key
already exists (workers ran the new code first) the old entries or counts are merged into
it. Safe to run again: a second run finds nothing to move.
"""

from dataclasses import dataclass
from typing import cast

import redis

from . import keys
from .connection import StreamEntry, XAddFields, get_redis
from .registry import CONSUMERS
from .stats import known_streams


@dataclass(frozen=True)
class Moved:
    old: str
    new: str
    items: int


def migrate_legacy_keys(client: redis.Redis | None = None) -> list[Moved]:
    """Rename (or merge) every legacy dead-letter stream and metrics hash; what moved."""
    client = client or get_redis()
    moved = []
    for stream in known_streams():
        moved += _move_stream(client, keys.LEGACY_DEAD_LETTER.format(stream), keys.dead_letter_stream(stream))
        moved += _move_hash(client, keys.LEGACY_STREAM_METRICS.format(stream), keys.stream_metrics(stream))
    for spec in CONSUMERS.values():
        old = keys.LEGACY_CONSUMER_METRICS.format(spec.name)
        moved += _move_hash(client, old, keys.consumer_metrics(spec.name, spec.stream_name))
    return moved


def _move_stream(client: redis.Redis, old: str, new: str) -> list[Moved]:
    if old == new or not client.exists(old):
        return []
    length = int(client.xlen(old))
    if not client.exists(new):
        client.rename(old, new)
        return [Moved(old, new, length)]
    # Both exist: append the old dead letters (new ids; their fields keep dlq_at and the
    # original entry id) and drop the old stream.
    start = "-"
    while True:
        entries = cast(list[StreamEntry], client.xrange(old, min=start, count=1000))
        if not entries:
            break
        pipe = client.pipeline(transaction=False)
        for _, fields in entries:
            pipe.xadd(new, cast(XAddFields, fields))
        pipe.execute()
        start = "(" + entries[-1][0]
    client.delete(old)
    return [Moved(old, new, length)]


def _move_hash(client: redis.Redis, old: str, new: str) -> list[Moved]:
    if old == new or not client.exists(old):
        return []
    counts = cast(dict[str, str], client.hgetall(old))
    pipe = client.pipeline(transaction=True)
    for name, value in counts.items():
        pipe.hincrby(new, name, int(value))
    pipe.delete(old)
    pipe.execute()
    return [Moved(old, new, len(counts))]
