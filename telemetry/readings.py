"""A battery reading as seed 000's producers send it, and its validation.

The message is a JSON object `{battery_id, timestamp, voltage, current, temperature,
state_of_charge, state_of_health}`: integers, with the seed's ranges. Anything else is
rejected with a reason that says what is wrong (the ingest dead-letters it).
"""

import json
from dataclasses import dataclass

# Stored fields (everything but the id) in hash order, with their inclusive ranges.
FIELD_RANGES: dict[str, tuple[int | None, int | None]] = {
    "timestamp": (0, None),
    "voltage": (0, 600),
    "current": (0, 200),
    "temperature": (-100, 1000),
    "state_of_charge": (0, 100),
    "state_of_health": (0, 100),
}
STORED_FIELDS = tuple(FIELD_RANGES)


class InvalidReading(ValueError):
    """The message is not a valid reading; it can never be stored."""


@dataclass(frozen=True, slots=True)
class Reading:
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


def _integer(data: dict, name: str, low: int | None, high: int | None) -> int:
    if name not in data:
        raise InvalidReading(f"{name} is missing")
    value = data[name]
    if type(value) is not int:  # bool is an int subclass, 3.0 and "3" are not ints
        raise InvalidReading(f"{name} must be an integer, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{low}–{high}" if high is not None else f"≥ {low}"
        raise InvalidReading(f"{name} {value} is out of range ({bounds})")
    return value


def reading_parse(raw: bytes | str | None) -> Reading:
    """Decode and validate one message value; raise InvalidReading with the reason."""
    if raw is None:
        raise InvalidReading("empty message (no value)")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidReading(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidReading(f"not a JSON object: {type(data).__name__}")
    battery_id = _integer(data, "battery_id", 0, None)
    values = [_integer(data, name, low, high) for name, (low, high) in FIELD_RANGES.items()]
    return Reading(battery_id, *values)
