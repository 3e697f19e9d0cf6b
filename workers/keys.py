"""Every Redis key name the workers use besides the streams themselves, in one place.

On a Redis Cluster a MULTI or a Lua script may only touch keys of one hash slot. A key's
slot is the CRC16 of its whole name, or of the part between the first `{` and the next
`}` (its hash tag) when there is one. Stream names stay exactly the seeds' names
(`NotificationStream`, `weather-requests`, …); the keys that go with a stream in one
MULTI (its dead letters, its metric hashes) carry the stream's name as their hash tag,
`{NotificationStream}:dlq`, so they live in the stream's slot. On a single Redis the
braces are just characters of the name.
"""

from redis.crc import key_slot

LEGACY_DEAD_LETTER = "{}:dlq"  # before hash tags; `manage.py migrate_redis_keys` renames them
LEGACY_CONSUMER_METRICS = "workers:metrics:consumer:{}"
LEGACY_STREAM_METRICS = "workers:metrics:stream:{}"

# The Redis epoch marker (workers.redis_epoch); a single-key operation, any slot.
REDIS_EPOCH_MARKER = "commsplatform:redis-epoch"


def hash_tag(key: str) -> str:
    """The part of `key` Redis Cluster hashes: its hash tag if it has one, else all of it."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def colocated(stream: str) -> str:
    """The prefix of a key that hashes to `stream`'s slot: `{stream}`, or the stream's own
    name when that already carries a hash tag (`{a}b` → `{a}b`: tagged again it would
    hash `{a`)."""
    return stream if hash_tag(stream) != stream else f"{{{stream}}}"


def dead_letter_stream(stream: str) -> str:
    """`{stream}:dlq`: the dead letters of a stream consumer, in the stream's slot."""
    return f"{colocated(stream)}:dlq"


def stream_metrics(stream: str) -> str:
    """`{stream}:metrics`: per-stream counters (trim cap hits and drops)."""
    return f"{colocated(stream)}:metrics"


def consumer_metrics(consumer: str, stream: str | None) -> str:
    """Per-consumer counters. A stream consumer's are `{stream}:metrics:consumer:<name>`,
    in its stream's slot, since they are counted in the MULTI that acks; the others
    (Kafka ingest, the reconciler) keep `workers:metrics:consumer:<name>`."""
    if stream is None:
        return LEGACY_CONSUMER_METRICS.format(consumer)
    return f"{colocated(stream)}:metrics:consumer:{consumer}"


def same_slot(*keys: str) -> bool:
    """Whether all `keys` hash to one Redis Cluster slot (so one MULTI may touch them)."""
    return len({key_slot(key.encode()) for key in keys}) <= 1
