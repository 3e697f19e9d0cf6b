"""A battery reading as seed 000's producers send it, and its validation.

The message is a JSON object `{battery_id, timestamp, voltage, current, temperature,
state_of_charge, state_of_health}`: integers, with the seed's ranges. Anything else is
rejected with a reason that says what is wrong (the ingest dead-letters it).
"""

import json
from typing import NamedTuple

import orjson

# Stored fields (everything but the id) in hash order, with their inclusive ranges. The
# timestamp's bound keeps it exact in the Lua script that compares readings (doubles).
MAX_TIMESTAMP = 2**53 - 1
FIELD_RANGES: dict[str, tuple[int, int | None]] = {
    "timestamp": (0, MAX_TIMESTAMP),
    "voltage": (0, 600),
    "current": (0, 200),
    "temperature": (-100, 1000),
    "state_of_charge": (0, 100),
    "state_of_health": (0, 100),
}
STORED_FIELDS = tuple(FIELD_RANGES)


class InvalidReading(ValueError):
    """The message is not a valid reading; it can never be stored."""


class Reading(NamedTuple):
    """A valid reading. A tuple in field order, so the ingest packs it without a lookup per field."""

    battery_id: int
    timestamp: int
    voltage: int
    current: int
    temperature: int
    state_of_charge: int
    state_of_health: int

    def stored_values(self) -> tuple[int, ...]:
        """The hash's values, in STORED_FIELDS order."""
        return (
            self.timestamp,
            self.voltage,
            self.current,
            self.temperature,
            self.state_of_charge,
            self.state_of_health,
        )

    def as_dict(self) -> dict[str, int]:
        return {"battery_id": self.battery_id, **dict(zip(STORED_FIELDS, self.stored_values(), strict=True))}


_CHECKED_FIELDS = (
    ("battery_id", 0, None),
    *((name, low, high) for name, (low, high) in FIELD_RANGES.items()),
)


def _reason(name: str, value: object, low: int, high: int | None) -> str:
    if type(value) is not int:
        return f"{name} must be an integer, got {value!r}"
    bounds = f"{low}–{high}" if high is not None else f"≥ {low}"
    return f"{name} {value} is out of range ({bounds})"


def reading_parse(raw: bytes | str | None) -> Reading:
    """Decode and validate one message value; raise InvalidReading with the reason."""
    if raw is None:
        raise InvalidReading("empty message (no value)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # What orjson refuses and the json module reads (NaN, integers past 64 bits, lone
        # surrogates) gets the same answer as valid JSON would: the field's reason.
        try:
            data = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidReading(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidReading(f"not a JSON object: {type(data).__name__}")
    values = []
    # The ingest's hottest loop: one pass, no call per field unless the field is wrong.
    for name, low, high in _CHECKED_FIELDS:
        value = data.get(name)
        # type() rather than isinstance(): bool is an int subclass; 3.0 and "3" are not ints.
        if type(value) is not int or value < low or (high is not None and value > high):
            if name not in data:
                raise InvalidReading(f"{name} is missing")
            raise InvalidReading(_reason(name, value, low, high))
        values.append(value)
    return Reading._make(values)
