"""`runworker kafka-ingest` end to end: a real Kafka-protocol broker (Tansu), a real Redis,
the worker as a subprocess."""

import json
import subprocess
import sys
import threading
import uuid
from collections import Counter

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from django.core.management import call_command

from commsplatform.devservers import RedisServer, free_port
from telemetry.simulation import readings_produce, topic_ensure
from tests.helpers import REPO_ROOT, subprocess_environment, wait_until
from workers.heartbeat import live_replicas
from workers.metrics import consumer_counters

from .factories import encode, expected_outcome, noisy_readings, reading

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def topic(kafka_broker) -> str:
    name = f"telemetry-{uuid.uuid4().hex[:8]}"
    topic_ensure(bootstrap_servers=kafka_broker.bootstrap, topic=name, partitions=2)
    return name


@pytest.fixture
def single_partition_topic(kafka_broker) -> str:
    name = f"telemetry-{uuid.uuid4().hex[:8]}"
    topic_ensure(bootstrap_servers=kafka_broker.bootstrap, topic=name, partitions=1)
    return name


@pytest.fixture
def subscriber(redis_client):
    pubsub = redis_client.pubsub()
    pubsub.psubscribe("battery:*:data")
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    yield pubsub
    pubsub.close()


def notifications(pubsub) -> Counter:
    """Battery id → notifications received (everything published so far has arrived: the
    worker publishes before it commits, and the tests wait for the commit)."""
    received: Counter = Counter()
    while (message := pubsub.get_message(timeout=0.3)) is not None:
        if message["type"] == "pmessage":
            assert message["data"] == "updates"
            received[int(message["channel"].split(":")[1])] += 1
    return received


def produce(kafka_broker, topic: str, values: list) -> None:
    """Readings keyed by battery id (a battery's readings keep their order), or raw bytes."""
    pairs = [(str(v.battery_id).encode(), encode(v)) if hasattr(v, "battery_id") else (b"raw", v) for v in values]
    readings_produce(bootstrap_servers=kafka_broker.bootstrap, topic=topic, values=iter(pairs))


def committed(kafka_broker, group: str, topic: str) -> int:
    """Sum of the group's committed offsets over the topic's partitions."""
    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        offsets = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def start_ingest(worker_process, topic: str, group: str, **env: str):
    return worker_process(
        "runworker",
        "kafka-ingest",
        env={
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP": group,
            "KAFKA_SESSION_TIMEOUT_MS": "2000",  # a killed member leaves the group quickly
            "KAFKA_INGEST_POLL_TIMEOUT_S": "0.2",
            **env,
        },
    )


def wait_committed(kafka_broker, group: str, topic: str, count: int, timeout: float = 90) -> None:
    wait_until(
        lambda: committed(kafka_broker, group, topic) == count,
        timeout=timeout,
        interval=0.3,
        message=f"{count} offsets committed by {group}",
    )


def stored_state(redis_client, battery_ids) -> dict:
    return {bid: redis_client.hgetall(f"battery:{bid}:data") for bid in battery_ids}


def test_the_newest_reading_of_each_battery_is_stored_and_each_real_change_notified(
    kafka_broker, topic, redis_client, subscriber, worker_process
):
    # given readings with duplicates, late and conflicting ones, for 25 batteries
    readings = noisy_readings(count=4000, batteries=25)
    state, changes = expected_outcome(readings)
    produce(kafka_broker, topic, readings)
    # when
    worker = start_ingest(worker_process, topic, "ingest-a")
    wait_committed(kafka_broker, "ingest-a", topic, len(readings))
    # then
    assert stored_state(redis_client, range(1, 26)) == state
    assert redis_client.smembers("info:batteries:ids") == {str(i) for i in range(1, 26)}
    assert notifications(subscriber) == changes
    assert redis_client.xlen("battery-changes") == sum(changes.values())
    assert sum(changes.values()) < len(readings)  # the feed did contain readings that change nothing
    assert not redis_client.exists(f"{topic}:dlq")
    assert consumer_counters("kafka-ingest")["processed"] == len(readings)
    assert worker.terminate() == 0


def test_the_id_set_deleted_behind_the_running_ingest_is_whole_after_its_next_batch(
    kafka_broker, topic, redis_client, subscriber, worker_process
):
    # given five batteries ingested by a running worker
    first = [reading(battery_id=bid, timestamp=100) for bid in range(1, 6)]
    produce(kafka_broker, topic, first)
    worker = start_ingest(worker_process, topic, "ingest-ids")
    wait_committed(kafka_broker, "ingest-ids", topic, len(first))
    assert notifications(subscriber) == Counter(range(1, 6))
    # when the set is deleted, and the next readings change nothing (replays, one older)
    redis_client.delete("info:batteries:ids")
    produce(kafka_broker, topic, [*first[:4], reading(battery_id=5, timestamp=99)])
    wait_committed(kafka_broker, "ingest-ids", topic, 2 * len(first))
    # then every id is back, and nothing was stored or announced again
    assert redis_client.smembers("info:batteries:ids") == {str(bid) for bid in range(1, 6)}
    assert notifications(subscriber) == Counter()
    assert redis_client.xlen("battery-changes") == len(first)
    assert redis_client.hget("battery:5:data", "timestamp") == "100"
    assert worker.terminate() == 0


def test_replaying_the_whole_topic_changes_and_notifies_nothing(
    kafka_broker, topic, redis_client, subscriber, worker_process
):
    # given everything ingested once
    readings = noisy_readings(count=1500, batteries=10, seed=3)
    state, changes = expected_outcome(readings)
    produce(kafka_broker, topic, readings)
    first = start_ingest(worker_process, topic, "ingest-first")
    wait_committed(kafka_broker, "ingest-first", topic, len(readings))
    assert first.terminate() == 0
    assert notifications(subscriber) == changes
    # when a new group reads the topic again from the start (as after losing every offset)
    replay = start_ingest(worker_process, topic, "ingest-replay")
    wait_committed(kafka_broker, "ingest-replay", topic, len(readings))
    # then
    assert notifications(subscriber) == Counter()
    assert redis_client.xlen("battery-changes") == sum(changes.values())
    assert stored_state(redis_client, range(1, 11)) == state
    assert replay.terminate() == 0


def test_a_malformed_message_is_dead_lettered_and_the_valid_ones_stored(
    kafka_broker, single_partition_topic, redis_client, worker_process
):
    # given
    topic = single_partition_topic
    bad_range = {**reading(battery_id=2).as_dict(), "voltage": 900}
    produce(
        kafka_broker,
        topic,
        [
            reading(battery_id=1),
            b"{not json",
            reading(battery_id=2),
            encode(bad_range),
            reading(battery_id=3),
            b"[]",
        ],
    )
    # when
    worker = start_ingest(worker_process, topic, "ingest-dlq")
    wait_committed(kafka_broker, "ingest-dlq", topic, 6)
    # then the valid ones are stored
    assert redis_client.smembers("info:batteries:ids") == {"1", "2", "3"}
    assert redis_client.hget("battery:2:data", "voltage") == "400"
    # and the others are in the dead-letter stream with their reason and coordinates
    dead = [fields for _, fields in redis_client.xrange(f"{topic}:dlq")]
    assert [(d["offset"], d["partition"], d["topic"], d["key"], d["value"]) for d in dead] == [
        ("1", "0", topic, "raw", "{not json"),
        ("3", "0", topic, "raw", json.dumps(bad_range)),
        ("5", "0", topic, "raw", "[]"),
    ]
    assert dead[0]["reason"].startswith("invalid reading: not JSON")
    assert dead[1]["reason"] == "invalid reading: voltage 900 is out of range (0–600)"
    assert dead[2]["reason"] == "invalid reading: not a JSON object: list"
    assert {d["group"] for d in dead} == {"ingest-dlq"}
    # and the consumer goes on
    produce(kafka_broker, topic, [reading(battery_id=4)])
    wait_committed(kafka_broker, "ingest-dlq", topic, 7)
    assert redis_client.sismember("info:batteries:ids", "4")
    assert consumer_counters("kafka-ingest")["dead_lettered"] == 3
    assert worker.running
    assert worker.terminate() == 0


def test_a_consumer_killed_mid_stream_and_restarted_ends_as_a_clean_run_without_extra_notifications(
    kafka_broker, topic, redis_client, subscriber, worker_process
):
    # given
    readings = noisy_readings(count=12000, batteries=60, seed=11)
    state, changes = expected_outcome(readings)
    first_part, second_part = readings[:8000], readings[8000:]
    produce(kafka_broker, topic, first_part)
    worker = start_ingest(worker_process, topic, "ingest-crash", KAFKA_INGEST_BATCH_SIZE="50")
    wait_until(lambda: consumer_counters("kafka-ingest")["processed"] >= 500, timeout=60, message="ingest started")
    # when: kill -9 in the middle of the stream, more readings arrive, restart
    worker.kill()
    processed_before_the_crash = consumer_counters("kafka-ingest")["processed"]
    produce(kafka_broker, topic, second_part)
    restarted = start_ingest(worker_process, topic, "ingest-crash")
    wait_committed(kafka_broker, "ingest-crash", topic, len(readings))
    # then: the state of a clean run, and one notification per real change — none twice
    assert processed_before_the_crash < len(readings)
    assert stored_state(redis_client, range(1, 61)) == state
    assert redis_client.scard("info:batteries:ids") == 60
    assert notifications(subscriber) == changes
    assert redis_client.xlen("battery-changes") == sum(changes.values())
    assert restarted.terminate() == 0


def test_simulate_telemetry_produces_realistic_readings_with_progress(kafka_broker, settings):
    # given
    from io import StringIO

    from django.core.management import call_command

    from telemetry.readings import reading_parse

    topic = f"simulated-{uuid.uuid4().hex[:8]}"
    out = StringIO()
    # when
    call_command("simulate_telemetry", "--count", "200", "--batteries", "8", "--topic", topic, stdout=out)
    # then
    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": f"check-{topic}"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    messages = []
    try:
        wait_until(lambda: messages.extend(consumer.consume(200, timeout=0.5)) or len(messages) >= 200, timeout=30)
    finally:
        consumer.close()
    readings = [reading_parse(m.value()) for m in messages]
    assert len(readings) == 200
    assert {r.battery_id for r in readings} == set(range(1, 9))
    for battery_id in range(1, 9):
        timestamps = [r.timestamp for r in readings if r.battery_id == battery_id]
        assert len(timestamps) == 25
        assert timestamps == sorted(set(timestamps))
    assert {m.key() for m in messages} == {str(i).encode() for i in range(1, 9)}
    lines = out.getvalue().splitlines()
    assert lines[0] == f"producing 200 readings for 8 batteries to {topic}"
    assert "  200/200 (100%)" in lines
    assert lines[-1] == f"delivered 200 readings to {topic}"


def test_simulate_telemetry_without_a_broker_says_so_in_one_line_and_fails(redis_client):
    # given: nothing listens on the configured bootstrap address
    address = f"127.0.0.1:{free_port()}"
    # when
    result = subprocess.run(
        [sys.executable, "manage.py", "simulate_telemetry", "--count", "10"],
        cwd=REPO_ROOT,
        env=subprocess_environment({"KAFKA_BOOTSTRAP_SERVERS": address}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then: one line naming the address and what to do; no traceback, no librdkafka noise
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"CommandError: cannot reach the Kafka broker at {address} ({address}: Connection refused); "
        "start `make run`, or set KAFKA_BOOTSTRAP_SERVERS"
    ]
    assert "delivered" not in result.stdout


def test_sigterm_mid_stream_commits_exactly_what_was_written(kafka_broker, topic, redis_client, worker_process):
    # given a consumer in the middle of a long stream
    readings = noisy_readings(count=8000, batteries=40, seed=5)
    produce(kafka_broker, topic, readings)
    worker = start_ingest(worker_process, topic, "ingest-term", KAFKA_INGEST_BATCH_SIZE="50")
    wait_until(lambda: consumer_counters("kafka-ingest")["processed"] >= 500, timeout=60, message="ingest started")
    # when
    exit_code = worker.terminate()
    # then: every written batch was committed, nothing more
    assert exit_code == 0
    assert committed(kafka_broker, "ingest-term", topic) == consumer_counters("kafka-ingest")["processed"]


def test_redis_down_mid_stream_holds_the_offsets_and_loses_nothing(kafka_broker, topic, worker_process):
    # given an ingest writing to a Redis that persists (AOF) and then goes away
    readings = noisy_readings(count=3000, batteries=20, seed=9)
    state, changes = expected_outcome(readings)
    first_part, second_part = readings[:1500], readings[1500:]
    with RedisServer(appendonly=True) as server:
        client = server.client()
        produce(kafka_broker, topic, first_part)
        worker = start_ingest(worker_process, topic, "ingest-outage", REDIS_URL=server.url, WORKER_RETRY_CAP_S="0.5")
        wait_committed(kafka_broker, "ingest-outage", topic, len(first_part))
        server.stop()
        # when readings arrive while Redis is down
        produce(kafka_broker, topic, second_part)
        wait_until(lambda: "retrying the batch" in worker.output(), timeout=60, message="a failed write")
        # then nothing past what was written is committed
        assert committed(kafka_broker, "ingest-outage", topic) == len(first_part)
        assert worker.running
        # and when Redis is back, everything is stored, each change notified once
        server.start()
        wait_committed(kafka_broker, "ingest-outage", topic, len(readings))
        assert stored_state(client, range(1, 21)) == state
        assert client.xlen("battery-changes") == sum(changes.values())
        assert worker.terminate() == 0


def test_a_paused_ingest_reads_nothing_and_resumed_stores_everything_once(
    kafka_broker, topic, redis_client, subscriber, worker_process
):
    # given an ingest that has stored a first part, each reading a change
    first_part = [reading(battery_id=b, timestamp=1_700_000_000 + b) for b in range(1, 21)]
    second_part = [reading(battery_id=b, timestamp=1_700_001_000 + b, voltage=500) for b in range(1, 21)]
    produce(kafka_broker, topic, first_part)
    worker = start_ingest(worker_process, topic, "ingest-pause", WORKER_PAUSE_CHECK_S="0.2")
    wait_committed(kafka_broker, "ingest-pause", topic, len(first_part))
    # when an operator pauses it (the command) and its process says it is paused
    call_command("consumers", "pause", "kafka-ingest", "--reason", "maintenance", "--by", "tester")
    wait_until(lambda: set(live_replicas("kafka-ingest", redis_client).values()) == {"paused"}, timeout=20)
    # then readings that arrive are neither stored nor committed
    produce(kafka_broker, topic, second_part)
    threading.Event().wait(2)
    assert committed(kafka_broker, "ingest-pause", topic) == len(first_part)
    assert consumer_counters("kafka-ingest")["processed"] == len(first_part)
    assert redis_client.xlen("battery-changes") == len(first_part)
    assert stored_state(redis_client, [1]) == {
        1: {k: str(v) for k, v in first_part[0].as_dict().items() if k != "battery_id"}
    }
    assert worker.running
    # when resumed: the rest is stored, each reading processed and notified exactly once
    call_command("consumers", "resume", "kafka-ingest", "--by", "tester")
    wait_committed(kafka_broker, "ingest-pause", topic, len(first_part) + len(second_part))
    state, changes = expected_outcome(first_part + second_part)
    assert stored_state(redis_client, range(1, 21)) == state
    assert consumer_counters("kafka-ingest")["processed"] == len(first_part) + len(second_part)
    assert redis_client.xlen("battery-changes") == len(first_part) + len(second_part)
    assert notifications(subscriber) == changes == Counter({b: 2 for b in range(1, 21)})
    assert worker.terminate() == 0
