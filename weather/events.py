"""The events of seed 003's request/reply: requests on `weather-requests` (from the web
process) and replies on `weather-responses` (from the terminals)."""

REQUEST_TYPE = "weather.forecast.requested"
REPLY_TYPE = "weather.forecast.produced"
EVENT_TYPES = (REQUEST_TYPE, REPLY_TYPE)
