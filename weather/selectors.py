import contextlib
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis
from django.conf import settings

from workers.connection import UNAVAILABLE_ERRORS, StreamEntry, get_redis
from workers.publish import stream_name

from .replies import get_router
from .resilience import breaker_state

SUMMARIES = (
    "Freezing",
    "Bracing",
    "Chilly",
    "Cool",
    "Mild",
    "Warm",
    "Balmy",
    "Hot",
    "Sweltering",
    "Scorching",
)
_LAG_SCAN_CAP = 10_000


def forecast_sample_list(*, days: int = 5) -> list[dict[str, Any]]:
    """`GET /WeatherForecast`: the seed's sample forecasts for the next `days` days."""
    today = datetime.now(UTC).date()
    items = []
    for offset in range(1, days + 1):
        celsius = random.randint(-20, 55)
        items.append(
            {
                "date": (today + timedelta(days=offset)).isoformat(),
                "temperatureC": celsius,
                "temperatureF": 32 + int(celsius / 0.5556),
                "summary": random.choice(SUMMARIES),
            }
        )
    return items


@dataclass(frozen=True)
class QueueStats:
    depth: int  # requests not answered yet: waiting for a terminal + being processed
    waiting: int
    in_progress: int
    active_terminals: int  # consumers of the group holding a request right now
    terminals: int  # consumers known to the group


def weather_queue_stats(client: redis.Redis | None = None) -> QueueStats:
    """The terminals' view of weather-requests in processing-group (reads Redis)."""
    client = client or get_redis()
    stream = stream_name("weather_requests")
    group_name = settings.CONSUMER_GROUPS["weather"]
    if not client.exists(stream):
        return QueueStats(0, 0, 0, 0, 0)
    group = next((g for g in client.xinfo_groups(stream) if g["name"] == group_name), None)
    if group is None:  # no terminal ever ran: everything is waiting
        entries = client.xlen(stream)
        return QueueStats(entries, entries, 0, 0, 0)
    waiting = group.get("lag")
    if waiting is None:  # Redis < 7 has no lag: count entries after the last delivered one
        after = client.xrange(stream, min=f"({group['last-delivered-id']}", count=_LAG_SCAN_CAP)
        waiting = len(cast(list[StreamEntry], after))  # XRANGE replies with a list, never nil (the stub allows None)
    consumers = client.xinfo_consumers(stream, group_name)
    active = sum(1 for c in consumers if c["pending"])
    return QueueStats(
        depth=waiting + group["pending"],
        waiting=waiting,
        in_progress=group["pending"],
        active_terminals=active,
        terminals=len(consumers),
    )


def redis_round_trip() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        get_redis().ping()
    except UNAVAILABLE_ERRORS as exc:
        return {"redis_ok": False, "redis_error": f"{type(exc).__name__}: {exc}"}
    return {"redis_ok": True, "redis_rtt_ms": round((time.perf_counter() - started) * 1000, 2)}


def weather_status() -> dict[str, Any]:
    """This web process's side of request/reply: breaker, listener, pending, queue."""
    router = get_router()
    status: dict[str, Any] = {
        "circuit": breaker_state(),
        "pendingRequests": router.pending(),
        "replyListener": {"running": router.listening(), "last_error": router.last_error},
        **redis_round_trip(),
    }
    if status["redis_ok"]:
        with contextlib.suppress(*UNAVAILABLE_ERRORS):
            status["queue"] = weather_queue_stats().__dict__
    return status
