"""Seed 000's Kafka ingest."""

from .email import *  # noqa: F403

KAFKA_BOOTSTRAP_SERVERS = env(
    "KAFKA_BOOTSTRAP_SERVERS",
    default=env("KAFKA_BROKER", default=DEVSTACK_ENDPOINTS.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")),
)
KAFKA_TOPIC = env("KAFKA_TOPIC", default="battery-telemetry")
KAFKA_GROUP = env("KAFKA_GROUP", default="ems-redis-backend")
# Ingest tuning (telemetry app / workers.kafka): records per batch, how long one poll
# waits, the group session (short, so a dead consumer's partitions move quickly), and
# extra librdkafka settings as JSON (security.protocol, sasl.*, ...).
KAFKA_INGEST_BATCH_SIZE = env.int("KAFKA_INGEST_BATCH_SIZE", default=2000)
KAFKA_INGEST_POLL_TIMEOUT_S = env.float("KAFKA_INGEST_POLL_TIMEOUT_S", default=0.5)
KAFKA_SESSION_TIMEOUT_MS = env.int("KAFKA_SESSION_TIMEOUT_MS", default=6000)
KAFKA_CONSUMER_OPTIONS = env.json("KAFKA_CONSUMER_OPTIONS", default={})
