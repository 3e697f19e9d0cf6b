"""Streams and consumer groups (the seeds' names), the runner's defaults, trimming and
the outbox."""

from .redis import *  # noqa: F403

STREAMS = {
    "events": env("STREAM_EVENTS", default="NotificationStream"),
    "campaign": env("STREAM_CAMPAIGN", default="campaign"),
    "notification": env("STREAM_NOTIFICATION", default="notification"),
    "email": env("STREAM_EMAIL", default="email-notification"),
    "weather_requests": env("STREAM_WEATHER_REQUESTS", default="weather-requests"),
    "weather_responses": env("STREAM_WEATHER_RESPONSES", default="weather-responses"),
    "orders": env("STREAM_ORDERS", default="orders"),
    "inventory": env("STREAM_INVENTORY", default="inventory"),
    "accounts": env("STREAM_ACCOUNTS", default="accounts"),
    "battery_changes": env("STREAM_BATTERY_CHANGES", default="battery-changes"),
}
CONSUMER_GROUPS = {
    "events": env("GROUP_EVENTS", default="demo_consumer_group"),
}
# Defaults for every consumer; the registry may override per consumer.
WORKER_BLOCK_MS = env.int("WORKER_BLOCK_MS", default=1000)
WORKER_CLAIM_IDLE_MS = env.int("WORKER_CLAIM_IDLE_MS", default=30_000)
WORKER_MAX_DELIVERIES = env.int("WORKER_MAX_DELIVERIES", default=5)
WORKER_RETRY_BASE_S = env.float("WORKER_RETRY_BASE_S", default=0.1)
WORKER_RETRY_CAP_S = env.float("WORKER_RETRY_CAP_S", default=5.0)
WORKER_TRIM_INTERVAL_S = env.float("WORKER_TRIM_INTERVAL_S", default=30.0)
STREAM_MAXLEN_CAP = env.int("STREAM_MAXLEN_CAP", default=1_000_000)
OUTBOX_RELAY_GRACE_S = env.float("OUTBOX_RELAY_GRACE_S", default=5.0)
# Rows of sent events are deleted in batches by a background thread (workers.publish),
# gathered for this long, or deleted at once when this many are waiting.
OUTBOX_DELETE_INTERVAL_S = env.float("OUTBOX_DELETE_INTERVAL_S", default=0.05)
OUTBOX_DELETE_BATCH = env.int("OUTBOX_DELETE_BATCH", default=500)
