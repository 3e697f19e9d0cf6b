"""The Kafka ingest stalling because Redis refuses writes is visible.

A real broker (Tansu), the ingest as a subprocess, and a redis-server of the test's own
made to refuse writes the way production ones do: out of memory under `noeviction`.
"""

import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from prometheus_client.parser import text_string_to_metric_families

from telemetry.simulation import producer_for, topic_ensure
from tests.helpers import wait_until

from .factories import encode, expected_outcome, reading
from .test_ingest import start_ingest, stored_state, wait_committed

pytestmark = pytest.mark.django_db(transaction=True)


def produce_to_partitions(kafka_broker, topic: str, by_partition: dict[int, list]) -> None:
    # One record per produce request: Tansu answers a ListOffsets(latest) with the base
    # offset of the last record batch + 1, so batched records would hide from the watermark.
    producer = producer_for(kafka_broker.bootstrap)
    for partition, readings in by_partition.items():
        for item in readings:
            producer.produce(topic, encode(item), key=str(item.battery_id).encode(), partition=partition)
            assert producer.flush(30) == 0


def battery_readings(battery_id: int, start: int, count: int) -> list:
    return [reading(battery_id, 1_700_000_000 + start + i, voltage=300 + start + i) for i in range(count)]


def worker_health(name: str) -> str:
    try:
        call_command("worker_health", name, stdout=io.StringIO())
    except CommandError as exc:
        return str(exc)
    return "ok"


def kafka_lag(client, topic: str) -> dict[int, float]:
    body = client.get("/metrics").content.decode()
    return {
        int(sample.labels["partition"]): sample.value
        for family in text_string_to_metric_families(body)
        if family.name == "kafka_consumer_lag"
        for sample in family.samples
        if sample.labels["topic"] == topic
    }


def test_redis_refusing_writes_shows_in_readyz_the_lag_metric_and_worker_health_and_nothing_is_lost(
    kafka_broker, own_redis_server, worker_process, anon_client, settings, tmp_path
):
    # given: an ingest that has consumed everything so far, healthy
    topic = f"stall-{uuid.uuid4().hex[:8]}"
    group = f"group-{topic}"
    topic_ensure(bootstrap_servers=kafka_broker.bootstrap, topic=topic, partitions=2)
    settings.KAFKA_TOPIC, settings.KAFKA_GROUP = topic, group
    settings.WORKER_HEARTBEAT_DIR, settings.KAFKA_LAG_CACHE_S = str(tmp_path), 0
    first = {0: battery_readings(1, 0, 10), 1: battery_readings(2, 0, 10)}
    produce_to_partitions(kafka_broker, topic, first)
    worker = start_ingest(
        worker_process,
        topic,
        group,
        REDIS_URL=own_redis_server.url,
        WORKER_HEARTBEAT_DIR=str(tmp_path),
        WORKER_STALL_S="2",
        WORKER_RETRY_CAP_S="0.3",
    )
    wait_committed(kafka_broker, group, topic, 20)
    wait_until(lambda: worker_health("kafka-ingest") == "ok", timeout=10)
    assert kafka_lag(anon_client, topic) == {0: 0.0, 1: 0.0}

    # when: Redis runs out of memory under noeviction, and 7 + 3 more readings arrive
    admin = own_redis_server.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    second = {0: battery_readings(1, 10, 7), 1: battery_readings(2, 10, 3)}
    produce_to_partitions(kafka_broker, topic, second)

    # then: readiness fails naming Redis, the lag shows per partition, the worker is unhealthy
    ready = anon_client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not-ready"
    redis_check = ready.json()["checks"]["redis"]
    assert (redis_check["ok"], redis_check["writable"]) == (False, False)
    assert redis_check["error"].startswith("Redis refuses writes: OOM")
    assert kafka_lag(anon_client, topic) == {0: 7.0, 1: 3.0}
    stalled = wait_until(
        lambda: (h := worker_health("kafka-ingest")) != "ok" and h, timeout=30, message="worker_health failing"
    )
    assert stalled.startswith("kafka-ingest: stalled: no progress for ")
    assert "Redis refuses writes: OOM " in stalled
    assert "kafka ingest kafka-ingest STALLED" in worker.output()

    # when: Redis takes writes again
    admin.config_set("maxmemory", 0)

    # then: the ingest resumes, reports healthy, and nothing was lost
    wait_committed(kafka_broker, group, topic, 30)
    wait_until(lambda: worker_health("kafka-ingest") == "ok", timeout=10)
    assert anon_client.get("/readyz").status_code == 200
    assert kafka_lag(anon_client, topic) == {0: 0.0, 1: 0.0}
    everything = [r for part in (first, second) for readings in part.values() for r in readings]
    state, _ = expected_outcome(everything)
    assert stored_state(own_redis_server.client(), [1, 2]) == state
    assert "progressing again" in worker.output()
    assert worker.terminate() == 0
