"""Writes of the battery telemetry: seed 000's Redis contract, applied idempotently.

For each reading that changes the stored state, a Lua script does, atomically:
`HSET battery:<id>:data` (every field but the id), `SADD info:batteries:ids <id>` (done
for every reading of the call, changed or not, in one SADD ahead of the writes),
`PUBLISH battery:<id>:data updates` (the seed's downstream WebSocket service listens to
that), and `XADD battery-changes` with the same change as an event (pub/sub loses
messages when nobody listens; the stream does not).

Which reading wins is last-writer-wins on (timestamp, voltage, current, temperature,
state_of_charge, state_of_health), compared inside the script: an older reading, or one
equal to the stored reading, changes nothing and notifies nobody. So replaying a batch
after a crash is a no-op, and the final state does not depend on delivery order (two
different readings with the same timestamp — a producer bug — resolve the same way
whichever arrives first).

One script call applies a chunk of readings in order (so several readings of one battery
in a batch are compared one after the other), and a batch's chunks go out on one
pipeline: a batch costs one round trip, and Redis is never blocked for long by one call.
Per-reading calls were measured ~3× slower: packing and parsing a command per reading
dominated the ingest's CPU time.

The XADD is inside the script, not in `workers.publish`, because the notification must be
atomic with the compare-and-set: publishing after the script would either lose the event
on a crash or emit it again on a replay. The entry is still a standard envelope (see
`workers.events.Event`), built in the script for speed; its id is derived from the
reading (`battery_change_event_id`), so a consumer can dedupe.

On a Redis Cluster the battery hashes, the id set and the stream live in different hash
slots, and one script may only touch one slot. There the compare-and-set stays atomic
per battery (one script call per battery, with all of its readings of the batch, sent on
a pipeline to each master); then the PUBLISHes go out (on any node: cluster pub/sub
broadcasts), and the SADD and XADD of the readings that changed follow on the caller's
pipeline. The guarantee is weaker: a crash between the two steps
leaves the new state stored but not announced (a replay finds nothing to change), so a
`battery-changes` entry and its PUBLISH can be missed; the hash, the seed's contract, is
always right.
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from hashlib import sha1 as _sha1
from typing import cast

import redis
from django.conf import settings
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.typing import EncodableT

from workers.connection import UNAVAILABLE_ERRORS, XAddFields, get_redis, is_cluster

from .events import BATTERY_UPDATED, BATTERY_UPDATED_VERSION
from .readings import Reading

BATTERY_KEY = "battery:{}:data"
BATTERY_IDS_KEY = "info:batteries:ids"
UPDATE_MESSAGE = "updates"
CHUNK_SIZE = 500  # readings per script call
_SLOT_MOVED_ERRORS: tuple[type[Exception], ...] = (redis.exceptions.MovedError, *UNAVAILABLE_ERRORS)

# Lua shared by both scripts. `newer(key, ts, v, c, t, soc, soh)`: whether that reading
# (decimal strings: timestamp, voltage, current, temperature, state of charge, state of
# health) is newer than the one stored in `key`, compared field by field, the timestamp
# first (which settles it for all but equal timestamps: only those read the other fields).
_NEWER_LUA = """
local function cmp(old, new)
  old, new = tonumber(old), tonumber(new)
  if old == nil or new > old then return 1 end
  if new < old then return -1 end
  return 0
end
local function newer(key, ts, v, c, t, soc, soh)
  local stored_ts = redis.call('HGET', key, 'timestamp')
  if stored_ts == false then return true end
  local d = cmp(stored_ts, ts)
  if d ~= 0 then return d > 0 end
  local s = redis.call('HMGET', key, 'voltage', 'current', 'temperature', 'state_of_charge', 'state_of_health')
  d = cmp(s[1], v)
  if d == 0 then d = cmp(s[2], c) end
  if d == 0 then d = cmp(s[3], t) end
  if d == 0 then d = cmp(s[4], soc) end
  if d == 0 then d = cmp(s[5], soh) end
  return d > 0
end
"""

# KEYS: the id set, the changes stream, then one battery hash per reading.
# ARGV: occurred_at, the PUBLISH message, the event type and version, then two per
#       reading: its `battery-changes` event id and payload (`_PAYLOAD`, whose numbers the
#       script reads back with one match). Both are made in Python, where the ingest has
#       time to spare while Redis, the bottleneck, runs the previous batch's script: this
#       took the hashing and the string building (a quarter of the script's time) out of
#       Redis, and packs two arguments per reading instead of seven. Last, the chunk's
#       battery ids, each once: one SADD, before any write, for every reading of the
#       chunk whether it changes anything or not (one call instead of one per change;
#       a set deleted behind the ingest's back is whole again after the next batch).
# Returns one 0/1 per reading: whether it changed the stored state.
_APPLY_LUA = (
    _NEWER_LUA
    + """
local ids_key, stream = KEYS[1], KEYS[2]
local occurred_at, message, event_type, version = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local pattern = '^{"battery_id":(%-?%d+),"timestamp":(%-?%d+),"voltage":(%-?%d+),"current":(%-?%d+),'
                .. '"temperature":(%-?%d+),"state_of_charge":(%-?%d+),"state_of_health":(%-?%d+)}$'
local readings, changed = #KEYS - 2, {}
redis.call('SADD', ids_key, unpack(ARGV, 5 + 2 * readings))
for r = 1, readings do
  local key, event_id, payload = KEYS[r + 2], ARGV[3 + 2 * r], ARGV[4 + 2 * r]
  local _, ts, v, c, t, soc, soh = string.match(payload, pattern)
  if newer(key, ts, v, c, t, soc, soh) then
    redis.call('HSET', key, 'timestamp', ts, 'voltage', v, 'current', c, 'temperature', t,
               'state_of_charge', soc, 'state_of_health', soh)
    redis.call('PUBLISH', key, message)
    redis.call('XADD', stream, '*', 'id', event_id, 'type', event_type, 'version', version,
               'occurred_at', occurred_at, 'payload', payload)
    changed[r] = 1
  else
    changed[r] = 0
  end
end
return changed
"""
)
# A reading's `battery-changes` payload, compact JSON in the order of Reading's fields
# (what json.dumps(reading.as_dict(), separators=(",", ":")) gives, at a fraction of the cost).
_PAYLOAD = (
    b'{"battery_id":%d,"timestamp":%d,"voltage":%d,"current":%d,"temperature":%d,'
    b'"state_of_charge":%d,"state_of_health":%d}'
)
_EVENT_ID_NAME = b"battery:%d:%d:%d:%d:%d:%d:%d"
# Registered without a client: it runs on whichever client or pipeline is passed, and a
# pipeline loads it (SCRIPT LOAD) when the server does not know it, e.g. after a restart.
# The stub requires a client; None is fine at runtime since the source is bytes and each call passes one.
_apply_script = Script(None, _APPLY_LUA.encode())  # type: ignore[arg-type]


# The compare-and-set alone, for one battery (a Redis Cluster: one slot per call).
# KEYS[1]: the battery hash. ARGV: 6 values per reading (readings.STORED_FIELDS order).
# Returns one 0/1 per reading: whether it changed the stored state.
_CAS_LUA = (
    _NEWER_LUA
    + """
local key, changed = KEYS[1], {}
for r = 1, #ARGV / 6 do
  local a = (r - 1) * 6
  if newer(key, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]) then
    redis.call('HSET', key, 'timestamp', ARGV[a + 1], 'voltage', ARGV[a + 2], 'current', ARGV[a + 3],
               'temperature', ARGV[a + 4], 'state_of_charge', ARGV[a + 5], 'state_of_health', ARGV[a + 6])
    changed[r] = 1
  else
    changed[r] = 0
  end
end
return changed
"""
)
_cas_script = Script(None, _CAS_LUA.encode())  # type: ignore[arg-type]


def changes_stream() -> str:
    return settings.STREAMS["battery_changes"]


def battery_change_event_id(reading: Reading) -> str:
    """The envelope id of a reading's `battery-changes` entry: the same on every replay
    (a uuid-shaped SHA-1 of "battery:<id>:<the six readings.STORED_FIELDS>")."""
    h = _sha1(_EVENT_ID_NAME % reading, usedforsecurity=False).hexdigest()  # an id, not a secret
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def readings_apply(*, readings: Sequence[Reading], pipe: redis.client.Pipeline | None = None) -> list[bool] | None:
    """Store readings that change a battery's state, in order; notify each change.

    With `pipe`, the writes are queued on it and the caller executes it — the ingest
    does, together with its dead letters, before committing offsets. Without, they run in
    one round trip here and the result says, per reading, whether it changed anything.
    """
    own = pipe is None
    client = get_redis()
    if is_cluster(client):
        return _readings_apply_on_cluster(cast(RedisCluster, client), readings=readings, pipe=pipe)
    if pipe is None:
        pipe = client.pipeline(transaction=False)
    occurred_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    head: list[EncodableT] = [occurred_at, UPDATE_MESSAGE, BATTERY_UPDATED, BATTERY_UPDATED_VERSION]
    fixed_keys = [BATTERY_IDS_KEY, changes_stream()]
    for start in range(0, len(readings), CHUNK_SIZE):
        chunk = readings[start : start + CHUNK_SIZE]
        keys = fixed_keys + [BATTERY_KEY.format(r.battery_id) for r in chunk]
        args = list(head)
        for r in chunk:
            args += (battery_change_event_id(r), _PAYLOAD % r)
        args += dict.fromkeys(r.battery_id for r in chunk)
        _apply_script(keys=keys, args=args, client=pipe)
    if not own:
        return None
    return [bool(flag) for flags in pipe.execute() for flag in flags] if readings else []


def _readings_apply_on_cluster(
    client: RedisCluster, *, readings: Sequence[Reading], pipe: redis.client.Pipeline | None
) -> list[bool] | None:
    """readings_apply on a Redis Cluster: per battery, then the announcements (see above)."""
    by_battery: dict[int, list[int]] = {}  # battery id → indexes of its readings, in order
    for index, r in enumerate(readings):
        by_battery.setdefault(r.battery_id, []).append(index)
    try:
        flags = _compare_and_set(client, readings, by_battery)
    except _SLOT_MOVED_ERRORS:
        # A failover moved a slot: re-read the slot map and try once more (the script is
        # idempotent); a second failure goes to the ingest's own retry of the batch.
        client.nodes_manager.initialize()
        flags = _compare_and_set(client, readings, by_battery)
    changed = [r for r, flag in zip(readings, flags, strict=True) if flag]
    if changed:
        # A cluster pipeline refuses PUBLISH; any node broadcasts it to the whole cluster.
        publish = client.get_default_node().redis_connection.pipeline(transaction=False)
        for r in changed:
            publish.publish(BATTERY_KEY.format(r.battery_id), UPDATE_MESSAGE)
        publish.execute()
    announce = pipe if pipe is not None else client.pipeline(transaction=False)
    occurred_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for r in changed:
        announce.sadd(BATTERY_IDS_KEY, r.battery_id)
        announce.xadd(changes_stream(), cast(XAddFields, _change_fields(r, occurred_at)))
    if pipe is not None:
        return None
    announce.execute()
    return flags


def _compare_and_set(client: RedisCluster, readings: Sequence[Reading], by_battery: dict[int, list[int]]) -> list[bool]:
    """One CAS script call per battery, pipelined per master; one flag per reading."""
    per_node: dict[str, tuple[redis.client.Pipeline, list[list[int]]]] = {}
    for battery_id, indexes in by_battery.items():
        key = BATTERY_KEY.format(battery_id)
        node = client.get_node_from_key(key)
        if node.name not in per_node:
            per_node[node.name] = (node.redis_connection.pipeline(transaction=False), [])
        node_pipe, calls = per_node[node.name]
        args: list[EncodableT] = [value for i in indexes for value in readings[i].stored_values()]
        _cas_script(keys=[key], args=args, client=node_pipe)
        calls.append(indexes)
    flags = [False] * len(readings)
    for node_pipe, calls in per_node.values():
        for indexes, results in zip(calls, node_pipe.execute(), strict=True):
            for i, flag in zip(indexes, results, strict=True):
                flags[i] = bool(flag)
    return flags


def _change_fields(r: Reading, occurred_at: str) -> dict[str, str]:
    """The `battery-changes` entry the single-Redis script builds, built here."""
    return {
        "id": battery_change_event_id(r),
        "type": BATTERY_UPDATED,
        "version": str(BATTERY_UPDATED_VERSION),
        "occurred_at": occurred_at,
        "payload": json.dumps(r.as_dict(), separators=(",", ":")),
    }
