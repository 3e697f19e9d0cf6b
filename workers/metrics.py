"""Per-consumer and per-stream counters kept in Redis hashes.

Workers run in many processes and hosts; keeping their counters in Redis (one HINCRBY
per batch, in the same MULTI as the XACK) lets `/metrics` on any web process report
the totals of every replica. A Redis restart resets them, which Prometheus treats as a
counter reset. A stream consumer's hash lives in its stream's Redis Cluster slot
(`{stream}:metrics:consumer:<name>`, workers.keys) so it can join that MULTI.
"""

import redis

from . import keys
from .connection import get_redis
from .registry import CONSUMERS

CONSUMER_COUNTERS = ("processed", "failed", "retried", "dead_lettered", "duplicates", "reclaimed", "skipped")
STREAM_COUNTERS = ("trim_cap_hits", "trim_cap_dropped")


def _stream_of(consumer: str) -> str | None:
    """The stream of registered stream consumer `consumer`; None for the other loops."""
    spec = CONSUMERS.get(consumer)
    return spec.stream_name if spec is not None else None


def consumer_key(consumer: str, stream: str | None = None) -> str:
    """The counters hash of `consumer` (of `stream`, default: the registry's stream)."""
    return keys.consumer_metrics(consumer, stream or _stream_of(consumer))


def incr_consumer(pipe: redis.client.Pipeline, consumer: str, *, stream: str | None = None, **counts: int) -> None:
    key = consumer_key(consumer, stream)
    for name, value in counts.items():
        if value:
            pipe.hincrby(key, name, value)


def incr_stream(stream: str, **counts: int) -> None:
    pipe = get_redis().pipeline(transaction=False)
    key = keys.stream_metrics(stream)
    for name, value in counts.items():
        if value:
            pipe.hincrby(key, name, value)
    pipe.execute()


def consumer_counters(consumer: str, stream: str | None = None) -> dict[str, int]:
    raw = get_redis().hgetall(consumer_key(consumer, stream))
    return {name: int(raw.get(name, 0)) for name in CONSUMER_COUNTERS}


def stream_counters(stream: str) -> dict[str, int]:
    raw = get_redis().hgetall(keys.stream_metrics(stream))
    return {name: int(raw.get(name, 0)) for name in STREAM_COUNTERS}
