"""The `kafka-ingest` handler: battery readings from Kafka into Redis (seed 000).

`workers.kafka` does the stream plumbing (batching, commit after the Redis writes are
durable, dead letters, shutdown) and workers.registry names the topic, group and batch
size (`KAFKA_CONSUMERS`); this module only turns a batch of records into
validated readings and queues their idempotent upsert.
"""

import redis

from workers.kafka import KafkaRecord, Rejected

from .readings import InvalidReading, reading_parse
from .services import readings_apply


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
