"""Seed 003: weather forecasts by request/reply over Redis Streams.

    POST /WeatherForecast/city ─XADD→ weather-requests ─(processing-group, N terminals)→
    handlers.handle_weather_requests → provider → XADD weather-responses ─XREAD→ the web
    process's reply listener → wakes the waiting request thread → 200

- services.forecast_request / forecast_replies: the two sides; replies.py: the per-process
  listener and why it was chosen; resilience.py: retries + circuit breaker (503 when open);
  health.py (/healthz), metrics.py (/metrics); loadtest.py (`manage.py loadtest weather`).
- Settings: WEATHER_* in commsplatform/settings/components/weather.py (timeout 30 s → 504, terminals,
  batch size, provider, simulated delay, retries, breaker threshold and open time,
  reply-stream cap). The defaults (4 terminals taking one request each) suit a slow
  provider; with the CPU-only built-in one, WEATHER_TERMINALS=1 WEATHER_BATCH_SIZE=32
  answers a batch in one round trip and is what bench.weather measures.
- Run: gunicorn for the web side (graceful_timeout must exceed WEATHER_REPLY_TIMEOUT_S so a
  SIGTERM lets waiting requests finish), `manage.py runworker weather` for the terminals.
"""
