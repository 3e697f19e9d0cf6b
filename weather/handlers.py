import logging

from workers.events import Event
from workers.runner import PermanentError

from .services import ForecastAsk, forecast_replies

logger = logging.getLogger("weather.terminal")


def handle_weather_requests(events: list[Event]) -> None:
    """weather-requests / processing-group: a terminal answers the requests it read.

    Registered with batch=True: the replies of a batch leave in one XADD round trip and the
    runner acks the batch in one more. A bad request fails the batch; the runner then
    handles its requests one by one, so only the bad one is dead-lettered (the others are
    answered; a request answered twice is harmless, see below).

    Registered with inbox=False: a request handled twice (a reclaim after a crash between
    the reply and the ack) only publishes a second reply with the same requestId, and the
    waiting web process discards every reply after the first. No database is touched.
    """
    forecast_replies(asks=[_ask_of(event) for event in events])


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
