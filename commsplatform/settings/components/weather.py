"""Seed 003's weather request/reply."""

from .consent import *  # noqa: F403

CONSUMER_GROUPS["weather"] = env("GROUP_WEATHER", default="processing-group")
WEATHER_REPLY_TIMEOUT_S = env.float("WEATHER_REPLY_TIMEOUT_S", default=30.0)  # then 504
WEATHER_TERMINALS = env.int("WEATHER_TERMINALS", default=4)  # concurrent terminals per worker process
# Requests one terminal takes at a time; their replies leave in one round trip. 1 suits a
# slow provider (a batch is answered in sequence); 32 with 1 terminal suits the built-in one.
WEATHER_BATCH_SIZE = env.int("WEATHER_BATCH_SIZE", default=1)
# After a batch smaller than WEATHER_BATCH_SIZE, a terminal waits this long before its next
# read, so that under load a batch (one read, one MULTI of replies and ack, one wake-up of
# each web process's listener) serves several requests; it adds at most this much latency.
# Never with batches of 1 (a full batch reads again at once).
WEATHER_LINGER_MS = env.int("WEATHER_LINGER_MS", default=2)
WEATHER_PROVIDER = env("WEATHER_PROVIDER", default="weather.providers.BuiltinForecastProvider")
WEATHER_PROCESSING_DELAY_MS = env.int("WEATHER_PROCESSING_DELAY_MS", default=0)  # simulated slow upstream
WEATHER_RESPONSES_MAXLEN = env.int("WEATHER_RESPONSES_MAXLEN", default=10_000)  # approximate; no group reads it
WEATHER_LISTENER_BLOCK_MS = env.int("WEATHER_LISTENER_BLOCK_MS", default=2000)
WEATHER_REDIS_RETRIES = env.int("WEATHER_REDIS_RETRIES", default=3)  # retries after the first try
WEATHER_RETRY_BASE_S = env.float("WEATHER_RETRY_BASE_S", default=0.05)  # backoff 0.05, 0.1, 0.2 s
WEATHER_RETRY_CAP_S = env.float("WEATHER_RETRY_CAP_S", default=1.0)
WEATHER_BREAKER_FAIL_MAX = env.int("WEATHER_BREAKER_FAIL_MAX", default=5)  # consecutive failures to open
WEATHER_BREAKER_RESET_S = env.float("WEATHER_BREAKER_RESET_S", default=30.0)  # open this long, then a trial
