"""Dead letters an operator can act on: list, show, redrive and purge `<stream>:dlq`.

The admin's dead-letters pages, the staff API (`/api/v1/streams/<stream>/dead-letters/`)
and `manage.py deadletters` are front ends over these functions alone.

- Selectors: `dead_letter_list` (newest first, filtered by consumer, error text, age),
  `dead_letter_get`.
- Services: `dead_letters_redrive` and `dead_letters_purge`, for a list of ids or every
  entry matching a `DeadLetterFilter`; each records an `OperatorAction` in the same call.

A redrive moves each entry exactly once, however many operators press the button at the
same moment: one Lua script per batch reads the dead letter, XADDs its original fields
(without the `dlq_*` ones, with `redrive_count` + 1 and `redriven_at`) to the stream and
XDELs it from the DLQ; an id already gone is skipped. The entry keeps its event id, so a
consumer with an inbox applies it at most once, and one that fails again is dead-lettered
with its `redrive_count` (the dead letter keeps every original field).
"""

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

import redis

from .connection import get_redis
from .deadletter import dead_letter_stream
from .models import OperatorAction
from .stats import known_streams

ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")
_SCAN_CHUNK = 500
_ACTION_BATCH = 100  # ids per Lua call: the script blocks Redis while it runs
_DLQ_PREFIX = "dlq_"
REDRIVE_FIELDS = ("redrive_count", "redriven_at")

# KEYS[1] the DLQ, KEYS[2] the original stream (one hash slot on a Redis Cluster);
# ARGV[1] the time of the redrive (ms), ARGV[2..] the DLQ entry ids. Returns the ids moved.
_REDRIVE_LUA = """
local moved = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local found = redis.call('XRANGE', KEYS[1], id, id)
  if #found == 1 then
    local fields = found[1][2]
    local out = {}
    local count = 0
    for j = 1, #fields, 2 do
      local name = fields[j]
      if name == 'redrive_count' then
        count = tonumber(fields[j + 1]) or 0
      elseif name ~= 'redriven_at' and string.sub(name, 1, 4) ~= 'dlq_' then
        out[#out + 1] = name
        out[#out + 1] = fields[j + 1]
      end
    end
    out[#out + 1] = 'redrive_count'
    out[#out + 1] = tostring(count + 1)
    out[#out + 1] = 'redriven_at'
    out[#out + 1] = ARGV[1]
    redis.call('XADD', KEYS[2], '*', unpack(out))
    redis.call('XDEL', KEYS[1], id)
    moved[#moved + 1] = id
  end
end
return moved
"""


class DeadLetterStreamUnknown(LookupError):
    """The stream is neither in settings.STREAMS nor consumed by a registered consumer."""


class DeadLetterSelectionInvalid(ValueError):
    """Neither ids nor a filter, or both, or an id that is not a stream entry id."""


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters: every criterion given must hold (none given: all of them).

    `max_id` bounds the set to entries dead-lettered up to a given DLQ id, so a
    confirmation page's "all matching" acts on what it showed, not on later arrivals."""

    consumer: str = ""
    error_contains: str = ""
    older_than_s: float | None = None
    max_id: str = ""

    def __post_init__(self) -> None:
        if self.older_than_s is not None and self.older_than_s < 0:
            raise DeadLetterSelectionInvalid("older_than_s must not be negative")
        if self.max_id and not ENTRY_ID.fullmatch(self.max_id):
            raise DeadLetterSelectionInvalid(f"not a stream entry id: {self.max_id!r}")

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the entry id in the DLQ
    stream: str  # the original stream
    original_entry_id: str
    event_id: str
    event_type: str
    payload: Any  # the decoded JSON payload, or its text when it is not JSON
    error: str
    attempts: int
    consumer: str
    group: str
    dead_lettered_at: datetime
    redrive_count: int
    fields: dict[str, str] = field(repr=False)  # the entry as it was on the stream

    @classmethod
    def from_entry(cls, stream: str, entry_id: str, raw: dict[str, str]) -> "DeadLetter":
        at_ms = raw.get("dlq_at") or entry_id.split("-", 1)[0]
        try:
            payload: Any = json.loads(raw.get("payload", ""))
        except ValueError:
            payload = raw.get("payload", "")
        return cls(
            id=entry_id,
            stream=raw.get("dlq_stream", stream),
            original_entry_id=raw.get("dlq_entry_id", ""),
            event_id=raw.get("id", ""),
            event_type=raw.get("type", ""),
            payload=payload,
            error=raw.get("dlq_error", ""),
            attempts=_int(raw.get("dlq_attempts")),
            consumer=raw.get("dlq_consumer", ""),
            group=raw.get("dlq_group", ""),
            dead_lettered_at=datetime.fromtimestamp(_int(at_ms) / 1000, tz=UTC),
            redrive_count=_int(raw.get("redrive_count")),
            fields={k: v for k, v in raw.items() if not k.startswith(_DLQ_PREFIX)},
        )

    def matches(self, wanted: DeadLetterFilter, now_ms: int) -> bool:
        if wanted.consumer and self.consumer != wanted.consumer:
            return False
        if wanted.error_contains and wanted.error_contains.lower() not in self.error.lower():
            return False
        return wanted.older_than_s is None or self.dead_lettered_at.timestamp() * 1000 <= (
            now_ms - wanted.older_than_s * 1000
        )


@dataclass(frozen=True)
class ActionResult:
    action: str
    stream: str
    requested: int  # ids asked for, or entries the filter matched
    done: list[str]  # DLQ ids redriven or purged by this call (others were already gone)
    audit_id: int


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _client() -> redis.Redis:
    return get_redis()


def dead_letter_stream_ensure(stream: str) -> str:
    """`stream` if it is one we know (so nothing is ever redriven onto an arbitrary key)."""
    if stream not in known_streams():
        raise DeadLetterStreamUnknown(f"no stream named {stream!r}")
    return stream


# -- selectors ----------------------------------------------------------------------------
def _scan(stream: str, wanted: DeadLetterFilter) -> Iterator[DeadLetter]:
    """The DLQ's entries matching `wanted`, newest first, read in chunks."""
    client = _client()
    dlq = dead_letter_stream(stream)
    now_ms = _now_ms()
    upper = wanted.max_id or "+"
    if wanted.older_than_s is not None:
        # DLQ ids are the time of the dead-lettering: start the scan at the cutoff.
        cutoff = f"{int(now_ms - wanted.older_than_s * 1000)}-{2**64 - 1}"
        upper = cutoff if upper == "+" else min(upper, cutoff, key=_id_key)
    while True:
        chunk = cast(list[tuple[str, dict[str, str]]], client.xrevrange(dlq, max=upper, min="-", count=_SCAN_CHUNK))
        for entry_id, raw in chunk:
            letter = DeadLetter.from_entry(stream, entry_id, raw)
            if letter.matches(wanted, now_ms):
                yield letter
        if len(chunk) < _SCAN_CHUNK:
            return
        upper = "(" + chunk[-1][0]


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def dead_letter_list(*, stream: str, wanted: DeadLetterFilter | None = None) -> list[DeadLetter]:
    """Dead letters of `stream`, newest first, that match `wanted`."""
    dead_letter_stream_ensure(stream)
    return list(_scan(stream, wanted or DeadLetterFilter()))


def dead_letter_get(*, stream: str, entry_id: str) -> DeadLetter | None:
    dead_letter_stream_ensure(stream)
    if not ENTRY_ID.fullmatch(entry_id):
        return None
    found = cast(list[tuple[str, dict[str, str]]], _client().xrange(dead_letter_stream(stream), entry_id, entry_id))
    return DeadLetter.from_entry(stream, *found[0]) if found else None


def dead_letter_count(*, stream: str) -> int:
    return cast(int, _client().xlen(dead_letter_stream(stream)))


# -- services -----------------------------------------------------------------------------
def _selected_ids(stream: str, ids: Sequence[str] | None, wanted: DeadLetterFilter | None) -> list[str]:
    if (ids is None) == (wanted is None):
        raise DeadLetterSelectionInvalid("give either entry ids or a filter")
    if ids is None:
        return [letter.id for letter in _scan(stream, cast(DeadLetterFilter, wanted))]
    bad = [i for i in ids if not ENTRY_ID.fullmatch(i)]
    if bad:
        raise DeadLetterSelectionInvalid(f"not stream entry ids: {', '.join(map(repr, bad[:5]))}")
    if not ids:
        raise DeadLetterSelectionInvalid("no entry ids given")
    return list(dict.fromkeys(ids))


def _record(
    *,
    action: Literal["redrive", "purge"],
    stream: str,
    actor: str,
    ids: Sequence[str] | None,
    wanted: DeadLetterFilter | None,
    requested: int,
    done: list[str],
) -> ActionResult:
    selection: dict[str, Any] = (
        {"ids": list(ids)} if ids is not None else {"filter": cast(DeadLetterFilter, wanted).describe()}
    )
    row = OperatorAction.objects.create(
        actor=actor[:200],
        stream=stream,
        action=action,
        selection=selection,
        requested=requested,
        affected=len(done),
    )
    return ActionResult(action=action, stream=stream, requested=requested, done=done, audit_id=row.pk)


def dead_letters_redrive(
    *, stream: str, actor: str, ids: Sequence[str] | None = None, wanted: DeadLetterFilter | None = None
) -> ActionResult:
    """Move the selected dead letters back onto `stream`, each exactly once, and record it."""
    dead_letter_stream_ensure(stream)
    selected = _selected_ids(stream, ids, wanted)
    script = _client().register_script(_REDRIVE_LUA)
    keys = [dead_letter_stream(stream), stream]
    moved: list[str] = []
    for start in range(0, len(selected), _ACTION_BATCH):
        batch = selected[start : start + _ACTION_BATCH]
        moved.extend(cast(list[str], script(keys=keys, args=[_now_ms(), *batch])))
    return _record(
        action="redrive", stream=stream, actor=actor, ids=ids, wanted=wanted, requested=len(selected), done=moved
    )


def dead_letters_purge(
    *, stream: str, actor: str, ids: Sequence[str] | None = None, wanted: DeadLetterFilter | None = None
) -> ActionResult:
    """Delete the selected dead letters for good, and record it."""
    dead_letter_stream_ensure(stream)
    selected = _selected_ids(stream, ids, wanted)
    dlq = dead_letter_stream(stream)
    purged: list[str] = []
    for start in range(0, len(selected), _ACTION_BATCH):
        batch = selected[start : start + _ACTION_BATCH]
        pipe = _client().pipeline(transaction=True)
        for entry_id in batch:
            pipe.xdel(dlq, entry_id)
        purged.extend(entry_id for entry_id, deleted in zip(batch, pipe.execute(), strict=True) if deleted)
    return _record(
        action="purge", stream=stream, actor=actor, ids=ids, wanted=wanted, requested=len(selected), done=purged
    )
