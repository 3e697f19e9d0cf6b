"""Weather request/reply: the web side asks (`forecast_request`), a terminal answers
(`forecast_replies`: a batch's replies, which the runner sends with the batch's ack).
No database is involved."""

import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings

from workers.connection import get_redis
from workers.events import Event
from workers.publish import RateWindow, publish, publish_within_rates

from .events import REPLY_TYPE, REQUEST_TYPE
from .providers import Forecast, get_provider
from .replies import get_router, wait_for
from .resilience import guarded

logger = logging.getLogger(__name__)

EXPIRED_KEY = "weather:metrics"


class ForecastTimeout(Exception):
    """No reply within the timeout; the waiter is gone, a late reply is dropped (weather_replies_late_total)."""

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


def forecast_request(
    *, city: str, location: str, timeout: float | None = None, rate_windows: Sequence[RateWindow] = ()
) -> dict[str, Any]:
    """Publish a forecast request to `weather-requests` and wait for its reply.

    With `rate_windows` (the caller's throttles, their counters on the stream's Redis) the
    request is counted and written in one round trip, and only if each window allows it:
    else workers.publish.RateExceeded, nothing written.

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
        extra={"requestId": request_id, "data": orjson.dumps(data).decode()},
    )
    router = get_router()
    waiter = router.expect(request_id)
    try:

        def send() -> str:
            router.start()
            if rate_windows:
                return publish_within_rates("weather_requests", event, windows=rate_windows)
            return publish("weather_requests", event)

        guarded(send)
        reply = wait_for(waiter, timeout)
    finally:
        router.forget(request_id)
    if reply is None:
        raise ForecastTimeout(request_id, timeout)
    return orjson.loads(reply)


@dataclass(frozen=True, slots=True)
class ForecastAsk:
    """One request as a terminal reads it from weather-requests."""

    request_id: str
    city: str
    location: str
    deadline_ms: int | None = None


def forecast_replies(*, asks: Sequence[ForecastAsk]) -> list[Event]:
    """The reply events of a terminal's batch, in order, for `weather-responses`.

    They are returned, not published: the terminal's handler gives them to the runner,
    which XADDs them in the MULTI that acks the requests. A request whose caller's deadline
    has passed gets no reply (and is counted): nobody waits for it any more. The reply
    stream has no consumer group, so whoever publishes caps it with an approximate MAXLEN
    (settings.WEATHER_RESPONSES_MAXLEN); its readers only need the last few seconds of it.
    """
    now = datetime.now(UTC)
    now_ms = now.timestamp() * 1000
    provider = get_provider()
    replies = []
    for ask in asks:
        if ask.deadline_ms is not None and now_ms > ask.deadline_ms:
            logger.info("weather request %s expired before processing; skipped", ask.request_id)
            continue
        replies.append(_reply_event(ask, provider.forecast(city=ask.city, location=ask.location, at=now)))
    if expired := len(asks) - len(replies):
        get_redis().hincrby(EXPIRED_KEY, "expired", expired)
    return replies


def _reply_event(ask: ForecastAsk, forecast: Forecast) -> Event:
    body = {
        "city": forecast.city,
        "location": forecast.location,
        "forecastTime": _iso(forecast.forecast_time),
        "temperature": forecast.temperature,
        "condition": forecast.condition,
        "humidity": forecast.humidity,
        "windSpeed": forecast.wind_speed,
        "requestId": ask.request_id,
    }
    # The reply's id derives from the request id: a re-sent reply carries the same id.
    return Event.keyed(
        REPLY_TYPE,
        ask.request_id,
        body,
        extra={
            "requestId": ask.request_id,
            "data": orjson.dumps(body).decode(),
            "worker": _worker_name(),
        },
    )
