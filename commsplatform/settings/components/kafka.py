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
# 6000 is Apache Kafka's smallest (group.min.session.timeout.ms); `make run`'s embedded
# Tansu is given less, since it makes the group join last half of it (KafkaBroker), and
# a command reaching that broker through the endpoints file takes its value from there.
_kafka_from_devstack = not env("KAFKA_BOOTSTRAP_SERVERS", default="") and not env("KAFKA_BROKER", default="")
KAFKA_SESSION_TIMEOUT_MS = env.int(
    "KAFKA_SESSION_TIMEOUT_MS",
    default=int(DEVSTACK_ENDPOINTS.get("KAFKA_SESSION_TIMEOUT_MS", 6000)) if _kafka_from_devstack else 6000,
)
KAFKA_CONSUMER_OPTIONS = env.json("KAFKA_CONSUMER_OPTIONS", default={})
