"""workers.kafka's loop with a handler of its own: a record the handler cannot take is
isolated and dead-lettered, the others of its batch are written, and offsets follow."""

import threading
import uuid

import pytest

from telemetry.simulation import readings_produce, topic_ensure
from tests.helpers import wait_until
from workers.kafka import KafkaIngestLoop, KafkaIngestSpec

pytestmark = pytest.mark.django_db


def remember_values(records, pipe):
    for record in records:
        if record.value == b"boom":
            raise ValueError("boom")
        pipe.rpush("seen", record.value)
    return []


def test_a_record_the_handler_raises_on_is_dead_lettered_and_the_rest_written(kafka_broker, redis_client):
    # given
    topic = f"loop-{uuid.uuid4().hex[:8]}"
    topic_ensure(bootstrap_servers=kafka_broker.bootstrap, topic=topic)
    values = [b"a", b"boom", b"b"]
    readings_produce(bootstrap_servers=kafka_broker.bootstrap, topic=topic, values=iter((None, v) for v in values))
    spec = KafkaIngestSpec(
        name="test-loop",
        topic=topic,
        group=f"group-{topic}",
        bootstrap_servers=kafka_broker.bootstrap,
        handler=remember_values,
        poll_timeout_s=0.1,
        session_timeout_ms=2000,
    )
    stop = threading.Event()
    loop = KafkaIngestLoop(spec, stop=stop)
    thread = threading.Thread(target=loop.run)
    # when
    thread.start()
    try:
        wait_until(lambda: loop.records == 3, timeout=60, message="3 records handled")
    finally:
        stop.set()
        thread.join(30)
    # then
    assert redis_client.lrange("seen", 0, -1) == ["a", "b"]
    [(_, dead)] = redis_client.xrange(f"{topic}:dlq")
    assert (dead["reason"], dead["offset"], dead["value"]) == (
        "handler error: ValueError('boom')",
        "1",
        "boom",
    )
    assert not thread.is_alive()
