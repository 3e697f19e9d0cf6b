"""Per-consumer and per-stream counters kept in Redis hashes.

Workers run in many processes and hosts; keeping their counters in Redis (one HINCRBY
per batch, in the same pipeline as the XACK) lets `/metrics` on any web process report
the totals of every replica. A Redis restart resets them, which Prometheus treats as a
counter reset.
"""

import redis

from .connection import get_redis

CONSUMER_KEY = "workers:metrics:consumer:{}"
STREAM_KEY = "workers:metrics:stream:{}"
CONSUMER_COUNTERS = ("processed", "failed", "retried", "dead_lettered", "duplicates", "reclaimed", "skipped")
STREAM_COUNTERS = ("trim_cap_hits", "trim_cap_dropped")


def incr_consumer(pipe: redis.client.Pipeline, consumer: str, **counts: int) -> None:
    key = CONSUMER_KEY.format(consumer)
    for name, value in counts.items():
        if value:
            pipe.hincrby(key, name, value)


def incr_stream(stream: str, **counts: int) -> None:
    pipe = get_redis().pipeline(transaction=False)
    key = STREAM_KEY.format(stream)
    for name, value in counts.items():
        if value:
            pipe.hincrby(key, name, value)
    pipe.execute()


def consumer_counters(consumer: str) -> dict[str, int]:
    raw = get_redis().hgetall(CONSUMER_KEY.format(consumer))
    return {name: int(raw.get(name, 0)) for name in CONSUMER_COUNTERS}


def stream_counters(stream: str) -> dict[str, int]:
    raw = get_redis().hgetall(STREAM_KEY.format(stream))
    return {name: int(raw.get(name, 0)) for name in STREAM_COUNTERS}
