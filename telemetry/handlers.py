"""The `kafka-ingest` consumer: battery readings from Kafka into Redis (seed 000).

`workers.kafka` does the stream plumbing (batching, commit after the Redis writes are
durable, dead letters, shutdown); this module only turns a batch of records into
validated readings and queues their idempotent upsert.
"""

import threading

import redis
from django.conf import settings

from workers.kafka import KafkaIngestLoop, KafkaIngestSpec, KafkaRecord, Rejected

from .readings import InvalidReading, reading_parse
from .services import changes_stream, readings_apply


def handle_readings(records: list[KafkaRecord], pipe: redis.client.Pipeline) -> list[Rejected]:
    """Queue the upsert of every valid reading on `pipe`; reject the invalid ones."""
    readings = []
    rejected = []
    for record in records:
        try:
            readings.append(reading_parse(record.value))
        except InvalidReading as exc:
            rejected.append(Rejected(record, f"invalid reading: {exc}"))
    readings_apply(readings=readings, pipe=pipe)
    return rejected


def ingest_spec() -> KafkaIngestSpec:
    return KafkaIngestSpec(
        name="kafka-ingest",
        topic=settings.KAFKA_TOPIC,
        group=settings.KAFKA_GROUP,
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        handler=handle_readings,
        batch_size=settings.KAFKA_INGEST_BATCH_SIZE,
        poll_timeout_s=settings.KAFKA_INGEST_POLL_TIMEOUT_S,
        session_timeout_ms=settings.KAFKA_SESSION_TIMEOUT_MS,
        trim_streams=(changes_stream(),),
        trim_interval_s=settings.WORKER_TRIM_INTERVAL_S,
        retry_cap_s=settings.WORKER_RETRY_CAP_S,
        stall_s=settings.WORKER_STALL_S,
        config=settings.KAFKA_CONSUMER_OPTIONS,
    )


def run_kafka_ingest(stop_event: threading.Event) -> None:
    """`runworker kafka-ingest`: consume until `stop_event` is set."""
    KafkaIngestLoop(ingest_spec(), stop=stop_event).run()
