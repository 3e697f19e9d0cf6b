"""Trimming that never drops an entry some consumer group has not acknowledged.

The safe point of a stream is the oldest id any group still needs: its oldest pending
(delivered, un-acked) entry, or the entry after its last delivered one. Everything below
the safe point is removed with `XTRIM MINID ~`. Only when a stream still holds more than
settings.STREAM_MAXLEN_CAP entries (a consumer stopped for a long time) is it cut to the
cap with `XTRIM MAXLEN ~`; that loses unread data, so it is logged and counted in the
`trim_cap_dropped` metric.
"""

import logging
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from . import metrics
from .connection import get_redis

logger = logging.getLogger(__name__)


def parse_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def next_id(entry_id: str) -> str:
    ms, seq = parse_id(entry_id)
    return f"{ms}-{seq + 1}"


@dataclass(frozen=True)
class TrimResult:
    stream: str
    removed: int
    cap_dropped: int
    safe_point: str | None


def safe_point(client: redis.Redis, stream: str) -> str | None:
    """The oldest entry id any group of `stream` still needs, or None without groups."""
    groups = client.xinfo_groups(stream)
    if not groups:
        return None
    points = []
    for group in groups:
        oldest_pending = client.xpending(stream, group["name"])["min"] if group["pending"] else None
        # Acks race this read: a pending list that emptied since XINFO has no "min"; the
        # group then needs only what follows the last entry delivered before XINFO.
        points.append(oldest_pending or next_id(group["last-delivered-id"]))
    return min(points, key=parse_id)


def trim_stream(stream: str, *, cap: int | None = None, retention_ms: int | None = None) -> TrimResult:
    """Trim `stream` below what every group has acknowledged; enforce the length cap.

    A stream without groups (a reply stream) is trimmed by age when `retention_ms` is
    given, and otherwise only by the cap.
    """
    client = get_redis()
    cap = settings.STREAM_MAXLEN_CAP if cap is None else cap
    if not client.exists(stream):
        return TrimResult(stream, 0, 0, None)
    point = safe_point(client, stream)
    if point is None and retention_ms is not None:
        point = f"{int(time.time() * 1000) - retention_ms}-0"
    removed = client.xtrim(stream, minid=point, approximate=True) if point else 0
    cap_dropped = 0
    if client.xlen(stream) > cap:
        cap_dropped = client.xtrim(stream, maxlen=cap, approximate=True)
        if cap_dropped:
            logger.warning("stream %s over its cap of %d entries: dropped %d unread", stream, cap, cap_dropped)
            metrics.incr_stream(stream, trim_cap_dropped=cap_dropped, trim_cap_hits=1)
    return TrimResult(stream, removed, cap_dropped, point)


def remove_idle_consumers(stream: str, group: str, *, idle_ms: int = 3_600_000) -> list[str]:
    """Forget consumers (dead worker processes) idle for long with nothing pending."""
    client = get_redis()
    removed = []
    for consumer in client.xinfo_consumers(stream, group):
        if consumer["pending"] == 0 and consumer["idle"] > idle_ms:
            client.xgroup_delconsumer(stream, group, consumer["name"])
            removed.append(consumer["name"])
    return removed
