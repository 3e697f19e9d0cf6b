"""Dead-letter entries: what a consumer writes when it gives up on a message.

A stream consumer's dead letters go to `{<stream>}:dlq` (in the stream's Redis Cluster
slot, see workers.keys) and keep the entry's own fields next to `dlq_*` fields saying
why, after how many attempts, and where it came from, so `XRANGE {<stream>}:dlq` shows
the message as it was and a replay can re-add it unchanged.
A Kafka record's dead letters go to `<topic>:dlq` with its coordinates and raw value.
"""

import time

from . import keys


def dead_letter_stream(stream: str) -> str:
    """The dead-letter stream of `stream`: `{<stream>}:dlq` (the one place that names it)."""
    return keys.dead_letter_stream(stream)


def _now_ms() -> str:
    return str(int(time.time() * 1000))


def stream_dead_letter(
    fields: dict[str, str], *, error: str, attempts: int, stream: str, group: str, entry_id: str, consumer: str
) -> dict[str, str]:
    """The dead letter of stream entry `entry_id`: its fields and why it was given up."""
    return {
        **fields,
        "dlq_error": error[:2000],
        "dlq_attempts": str(attempts),
        "dlq_stream": stream,
        "dlq_group": group,
        "dlq_entry_id": entry_id,
        "dlq_consumer": consumer,
        "dlq_at": _now_ms(),
    }


def kafka_dead_letter(
    *,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    consumer: str,
    group: str,
) -> dict[str, str]:
    """The dead letter of a Kafka record: its coordinates, raw key and value, and why."""
    return {
        "reason": reason[:2000],
        "topic": topic,
        "partition": str(partition),
        "offset": str(offset),
        "key": _text(key),
        "value": _text(value),
        "consumer": consumer,
        "group": group,
        "at": _now_ms(),
    }


def _text(raw: bytes | None) -> str:
    # The raw value is kept verbatim when it is text; other bytes are escaped, not lost.
    return "" if raw is None else raw.decode("utf-8", errors="backslashreplace")
