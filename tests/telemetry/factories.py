"""Readings for the telemetry tests, and the expected outcome of ingesting them."""

import json
import random
from collections import Counter

from telemetry.readings import Reading
from telemetry.simulation import readings_generate


def reading(battery_id: int = 1, timestamp: int = 1_700_000_000, **values: int) -> Reading:
    defaults = {
        "voltage": 400,
        "current": 50,
        "temperature": 25,
        "state_of_charge": 80,
        "state_of_health": 95,
    }
    return Reading(battery_id=battery_id, timestamp=timestamp, **{**defaults, **values})


def encode(value: Reading | dict) -> bytes:
    return json.dumps(value.as_dict() if isinstance(value, Reading) else value).encode()


def noisy_readings(*, count: int, batteries: int, seed: int = 7) -> list[Reading]:
    """Simulated readings with what a real feed has: about 10% exact duplicates of an earlier
    reading of the same battery, 5% late (older) readings, and a few readings that repeat
    a timestamp with other values."""
    rng = random.Random(seed)
    out: list[Reading] = []
    seen: dict[int, list[Reading]] = {}
    for item in readings_generate(count=count, batteries=batteries, seed=seed, start=1_700_000_000):
        history = seen.setdefault(item.battery_id, [])
        out.append(item)
        history.append(item)
        roll = rng.random()
        if roll < 0.10:
            out.append(rng.choice(history))
        elif roll < 0.15:
            out.append(item._replace(timestamp=item.timestamp - rng.randint(1, 50)))
        elif roll < 0.17:
            out.append(item._replace(voltage=rng.randint(0, 600)))
    return out


def expected_outcome(readings: list[Reading]) -> tuple[dict[int, dict[str, str]], Counter]:
    """The state after ingesting `readings` in order (one battery's readings keep their
    order in Kafka), and how many real changes each battery had."""
    best: dict[int, tuple[int, ...]] = {}
    changes: Counter = Counter()
    for item in readings:
        values = item.stored_values()
        if item.battery_id not in best or values > best[item.battery_id]:
            best[item.battery_id] = values
            changes[item.battery_id] += 1
    fields = ("timestamp", "voltage", "current", "temperature", "state_of_charge", "state_of_health")
    state = {bid: dict(zip(fields, map(str, values), strict=True)) for bid, values in best.items()}
    return state, changes
