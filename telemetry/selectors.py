"""Reads of the live battery state, straight from the Redis hashes the ingest writes."""

from collections.abc import Sequence
from typing import cast

from workers.connection import get_redis

from .readings import STORED_FIELDS
from .services import BATTERY_IDS_KEY, BATTERY_KEY


def battery_id_list() -> list[int]:
    """Every battery seen so far, in id order."""
    members = cast(set[str], get_redis().smembers(BATTERY_IDS_KEY))  # a decode_responses client
    return sorted(int(member) for member in members if member.lstrip("-").isdigit())


def battery_state_many(*, battery_ids: Sequence[int]) -> list[dict]:
    """The latest stored reading of each battery (one round trip); unknown ids are left out."""
    pipe = get_redis().pipeline(transaction=False)
    for battery_id in battery_ids:
        pipe.hmget(BATTERY_KEY.format(battery_id), STORED_FIELDS)
    states = []
    for battery_id, values in zip(battery_ids, pipe.execute() if battery_ids else [], strict=True):
        if values[0] is not None:
            states.append({"battery_id": battery_id, **dict(zip(STORED_FIELDS, values, strict=True))})
    return states


def battery_state_get(*, battery_id: int) -> dict | None:
    states = battery_state_many(battery_ids=[battery_id])
    return states[0] if states else None
