"""Trimming that never drops an entry some consumer group has not acknowledged.

The safe point of a stream is the oldest id any group still needs: its oldest pending
(delivered, un-acked) entry, or the entry after its last delivered one. Everything below
the safe point is removed with `XTRIM MINID ~`, repeated until a call removes nothing:
one call removes at most 100 macro nodes (about 10,000 entries), far less than a busy
stream gains between two trims. Only when a stream still holds more than
settings.STREAM_MAXLEN_CAP entries (a consumer stopped for a long time) is it cut to the
cap, by a Lua script that also counts, atomically, how many of the entries it removes
some group had not acknowledged (not yet delivered to it, or pending); those are logged
and counted in the `trim_cap_dropped` metric.
"""

import logging
import time
from dataclasses import dataclass
from typing import cast

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
    removed: int  # below the safe point
    cap_removed: int  # by the cap
    cap_dropped: int  # by the cap, and not acknowledged by some group
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


# The oldest entries beyond the cap, at most ARGV[2] of them, are removed; the reply is
# {removed, unacknowledged}. An entry is unacknowledged if it is after some group's last
# delivered id or in some group's pending list. Ids compare as (ms, seq) digit strings.
_CAP_SCRIPT = """
local stream, cap, chunk = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local excess = redis.call('XLEN', stream) - cap
if excess <= 0 then return {0, 0} end
local n = math.min(excess, chunk)
local entries = redis.call('XRANGE', stream, '-', '+', 'COUNT', n + 1)
local function num_less(a, b) return #a < #b or (#a == #b and a < b) end
local function id_less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  return num_less(am, bm) or (am == bm and num_less(as, bs))
end
local first, last = entries[1][1], entries[n][1]
local oldest_delivered, pending = nil, {}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local delivered = info['last-delivered-id']
  if oldest_delivered == nil or id_less(delivered, oldest_delivered) then oldest_delivered = delivered end
  if info['pending'] > 0 then
    for _, p in ipairs(redis.call('XPENDING', stream, info['name'], first, last, info['pending'])) do
      pending[p[1]] = true
    end
  end
end
local unacknowledged = 0
for i = 1, n do
  local id = entries[i][1]
  if pending[id] or (oldest_delivered ~= nil and id_less(oldest_delivered, id)) then
    unacknowledged = unacknowledged + 1
  end
end
if entries[n + 1] then
  redis.call('XTRIM', stream, 'MINID', entries[n + 1][1])
else
  redis.call('XTRIM', stream, 'MAXLEN', 0)
end
return {n, unacknowledged}
"""
_CAP_CHUNK = 10_000  # entries one script call removes: each call blocks Redis only briefly


def trim_stream(stream: str, *, cap: int | None = None, retention_ms: int | None = None) -> TrimResult:
    """Trim `stream` below what every group has acknowledged; enforce the length cap.

    A stream without groups (a reply stream) is trimmed by age when `retention_ms` is
    given, and otherwise only by the cap (its entries count as acknowledged: no group
    needs them).
    """
    client = get_redis()
    cap = settings.STREAM_MAXLEN_CAP if cap is None else cap
    if not client.exists(stream):
        return TrimResult(stream, 0, 0, 0, None)
    point = safe_point(client, stream)
    if point is None and retention_ms is not None:
        point = f"{int(time.time() * 1000) - retention_ms}-0"
    removed = 0
    while point:
        # The implicit LIMIT (100 macro nodes) keeps each call short; new entries are
        # above the point, so this ends.
        step = client.xtrim(stream, minid=point, approximate=True)
        if not step:
            break
        removed += step
    cap_removed = cap_dropped = 0
    cut_to_cap = client.register_script(_CAP_SCRIPT)
    while True:
        step, unacknowledged = cast(list[int], cut_to_cap(keys=[stream], args=[cap, _CAP_CHUNK]))
        if not step:
            break
        cap_removed += step
        cap_dropped += unacknowledged
    if cap_removed:
        logger.warning(
            "stream %s over its cap of %d entries: removed %d, of which %d not acknowledged by every group",
            stream,
            cap,
            cap_removed,
            cap_dropped,
        )
        metrics.incr_stream(stream, trim_cap_dropped=cap_dropped, trim_cap_hits=1)
    return TrimResult(stream, removed, cap_removed, cap_dropped, point)


# Check and delete in one script: XGROUP DELCONSUMER drops the consumer's pending entries,
# so no read or claim may give it one between the check and the delete.
_REMOVE_CONSUMERS_SCRIPT = """
local removed = {}
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
  if info['pending'] == 0 and info['idle'] > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    table.insert(removed, info['name'])
  end
end
return removed
"""


def remove_idle_consumers(stream: str, group: str, *, idle_ms: int) -> list[str]:
    """Forget the consumers of `group` (dead worker processes) idle for more than
    `idle_ms` with nothing pending, atomically; return their names.

    A consumer's idle time is reset when it is delivered entries and by each XAUTOCLAIM
    it runs, even one that claims nothing (not by an empty XREADGROUP, on Redis 6.2 and
    7.0); a consumer with pending entries is kept until they are claimed. Removing a live
    consumer by mistake costs nothing: it had nothing pending, and its next read or claim
    creates it again.
    """
    client = get_redis()
    script = client.register_script(_REMOVE_CONSUMERS_SCRIPT)
    removed = cast(list[str], script(keys=[stream], args=[group, idle_ms]))
    if removed:
        logger.info("group %s of %s: removed %d gone consumers: %s", group, stream, len(removed), ", ".join(removed))
    return removed
