import logging

from django.conf import settings

from workers.events import Event
from workers.handling import Outgoing, PermanentError, handles

from .events import REQUEST_TYPE
from .services import ForecastAsk, forecast_replies

logger = logging.getLogger("weather.terminal")


@handles(REQUEST_TYPE)
def handle_weather_requests(events: list[Event]) -> list[Outgoing]:
    """weather-requests / processing-group: a terminal answers the requests it read.

    Registered with batch=True; the replies are returned to the runner, which XADDs them to
    weather-responses in the same MULTI that acks the batch: one round trip for a batch's
    replies and ack, and a reply leaves if and only if its request is acknowledged. A bad
    request fails the batch; the runner then handles its requests one by one, so only the
    bad one is dead-lettered and the others are answered.

    Registered with inbox=False: a request handled twice (reclaimed from a terminal that
    stalled past the claim idle time, then acked by both) only publishes a second reply
    with the same requestId, and the waiting web process discards every reply after the
    first. No database is touched.
    """
    replies = forecast_replies(asks=[_ask_of(event) for event in events])
    return [Outgoing("weather_responses", reply, maxlen=settings.WEATHER_RESPONSES_MAXLEN) for reply in replies]


def _ask_of(event: Event) -> ForecastAsk:
    payload = event.payload
    request_id = event.extra.get("requestId") or payload.get("requestId")
    city = payload.get("city")
    location = payload.get("location", "")
    if not request_id or not isinstance(city, str) or not city.strip() or not isinstance(location, str):
        raise PermanentError(f"not a weather request: requestId={request_id!r} payload={payload!r}")
    deadline = payload.get("deadline_ms")
    return ForecastAsk(
        request_id=request_id,
        city=city,
        location=location,
        deadline_ms=int(deadline) if isinstance(deadline, int | float) else None,
    )
