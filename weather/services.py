"""Weather request/reply: the web side asks (`forecast_request`), a terminal answers
(`forecast_reply`). The request XADD is the only write; no database is involved."""

import functools
import json
import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from workers.connection import get_redis
from workers.events import Event
from workers.publish import publish

from .providers import get_provider
from .replies import get_router, wait_for
from .resilience import guarded

logger = logging.getLogger(__name__)

REQUEST_TYPE = "weather.forecast.requested"
REPLY_TYPE = "weather.forecast.produced"
# Reply event ids derive from the request id: a re-sent reply carries the same id.
_REPLY_NAMESPACE = uuid.UUID("5d0c6f3e-4a51-4f4e-9c3b-0c8f5b7e7a10")
EXPIRED_KEY = "weather:metrics"


class ForecastTimeout(Exception):
    """No reply within the timeout; the waiter is gone, a late reply will be discarded."""

    def __init__(self, request_id: str, timeout: float):
        super().__init__(f"no reply to weather request {request_id} within {timeout:g} s")
        self.request_id = request_id
        self.timeout = timeout


@functools.cache
def _worker_name_for(pid: int) -> str:
    return f"{socket.gethostname()}-{pid}"


def _worker_name() -> str:
    """host-pid of the terminal's process, written on each reply (tracing, tests)."""
    return _worker_name_for(os.getpid())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def forecast_request(*, city: str, location: str, timeout: float | None = None) -> dict[str, Any]:
    """Publish a forecast request to `weather-requests` and wait for its reply.

    The waiter is registered before the XADD (a fast reply cannot be missed) and removed in
    all cases afterwards. Redis calls go through retries and the circuit breaker: raises
    `resilience.CircuitOpen` when the breaker is open, a Redis error when Redis stays
    unreachable, `ForecastTimeout` when no terminal answers in time. Returns the seed's
    reply body (city, location, forecastTime, temperature, condition, humidity, windSpeed,
    requestId).
    """
    timeout = settings.WEATHER_REPLY_TIMEOUT_S if timeout is None else timeout
    request_id = str(uuid.uuid4())
    data = {"requestId": request_id, "city": city, "location": location}
    event = Event(
        id=request_id,
        type=REQUEST_TYPE,
        # The deadline lets a terminal skip work whose caller has already given up.
        payload={**data, "deadline_ms": int((time.time() + timeout) * 1000)},
        extra={"requestId": request_id, "data": json.dumps(data, separators=(",", ":"))},
    )
    router = get_router()
    waiter = router.expect(request_id)
    try:

        def send() -> str:
            router.start()
            return publish("weather_requests", event)

        guarded(send)
        reply = wait_for(waiter, timeout)
    finally:
        router.forget(request_id)
    if reply is None:
        raise ForecastTimeout(request_id, timeout)
    return json.loads(reply)


def forecast_reply(*, request_id: str, city: str, location: str, deadline_ms: int | None = None) -> bool:
    """Produce the forecast for one request and publish it to `weather-responses`.

    Returns False (and publishes nothing) when the caller's deadline has passed: nobody
    waits for that reply any more. The reply stream has no consumer group, so it is capped
    here with an approximate MAXLEN (settings.WEATHER_RESPONSES_MAXLEN); its readers only
    need the last few seconds of it.
    """
    if deadline_ms is not None and time.time() * 1000 > deadline_ms:
        logger.info("weather request %s expired before processing; skipped", request_id)
        get_redis().hincrby(EXPIRED_KEY, "expired", 1)
        return False
    forecast = get_provider().forecast(city=city, location=location, at=datetime.now(UTC))
    body = {
        "city": forecast.city,
        "location": forecast.location,
        "forecastTime": _iso(forecast.forecast_time),
        "temperature": forecast.temperature,
        "condition": forecast.condition,
        "humidity": forecast.humidity,
        "windSpeed": forecast.wind_speed,
        "requestId": request_id,
    }
    reply = Event(
        id=str(uuid.uuid5(_REPLY_NAMESPACE, request_id)),
        type=REPLY_TYPE,
        payload=body,
        extra={
            "requestId": request_id,
            "data": json.dumps(body, separators=(",", ":")),
            "worker": _worker_name(),
        },
    )
    publish("weather_responses", reply, maxlen=settings.WEATHER_RESPONSES_MAXLEN)
    return True
