import logging

from workers.events import Event
from workers.runner import PermanentError

from .services import forecast_reply

logger = logging.getLogger("weather.terminal")


def handle_weather_request(event: Event) -> None:
    """weather-requests / processing-group: one terminal answers one request.

    Registered with inbox=False: a request handled twice (a reclaim after a crash between
    the reply and the ack) only publishes a second reply with the same requestId, and the
    waiting web process discards every reply after the first. No database is touched.
    """
    payload = event.payload
    request_id = event.extra.get("requestId") or payload.get("requestId")
    city = payload.get("city")
    location = payload.get("location", "")
    if not request_id or not isinstance(city, str) or not city.strip() or not isinstance(location, str):
        raise PermanentError(f"not a weather request: requestId={request_id!r} payload={payload!r}")
    deadline = payload.get("deadline_ms")
    forecast_reply(
        request_id=request_id,
        city=city,
        location=location,
        deadline_ms=int(deadline) if isinstance(deadline, int | float) else None,
    )
