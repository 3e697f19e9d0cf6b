"""The seed contracts and the runner on a single Redis and on a real Redis Cluster.

Each test takes `streams_redis` and so runs twice: REDIS_URL is the session's single
Redis, then `redis+cluster://` of a 3-master, 3-replica cluster. On the cluster every
MULTI and script must touch one hash slot (Redis answers CROSSSLOT otherwise): these
tests fail there if a companion key loses its hash tag or `_finish` puts a reply of
another slot into the ack's MULTI.
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings as django_settings
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from commsplatform.throttling import AnonRateThrottle
from notifications.models import NotificationMessage
from telemetry.readings import Reading
from telemetry.services import BATTERY_IDS_KEY, readings_apply
from tests.helpers import wait_until
from tests.workers.handlers import created_groups
from workers import keys
from workers.connection import is_cluster
from workers.consumer import ConsumerLoop
from workers.deadletter import dead_letter_stream
from workers.events import Event
from workers.metrics import consumer_counters, stream_counters
from workers.publish import publish, publish_many
from workers.registry import ConsumerSpec, get_consumer
from workers.trimming import trim_stream

SEED_STREAMS = [
    "NotificationStream",
    "campaign",
    "notification",
    "email-notification",
    "weather-requests",
    "weather-responses",
    "orders",
    "inventory",
    "accounts",
    "battery-changes",
]


@pytest.mark.parametrize("stream", SEED_STREAMS)
def test_every_companion_key_of_a_seed_stream_hashes_to_the_stream_slot(stream):
    companions = [keys.dead_letter_stream(stream), keys.stream_metrics(stream), keys.consumer_metrics("c", stream)]

    assert keys.same_slot(stream, *companions)
    assert dead_letter_stream(stream) == f"{{{stream}}}:dlq"


def test_a_stream_name_with_its_own_hash_tag_keeps_it():
    assert keys.dead_letter_stream("{tenant}orders") == "{tenant}orders:dlq"
    assert keys.same_slot("{tenant}orders", "{tenant}orders:dlq")


@pytest.mark.django_db(transaction=True)
def test_post_event_reaches_the_stream_and_the_worker_stores_it(streams_redis, api_client, worker_process):
    # given: a notifications worker (its own process) on this Redis
    env = {"REDIS_URL": django_settings.REDIS_URL, "CACHE_REDIS_URL": os.environ["REDIS_URL"]}
    worker_process("runworker", "notifications", env=env)
    # when: the first call verifies the token (DRF's view), the second takes the common case
    # (on the cluster its throttle and its XADD are two round trips: the counters are on the cache's Redis)
    response = api_client.post("/event", {"description": "on every topology"}, format="json")
    again = api_client.post("/event", {"description": "and again"}, format="json")
    # then
    assert (response.status_code, again.status_code) == (200, 200), (response.content, again.content)
    wait_until(lambda: NotificationMessage.objects.count() == 2, timeout=30)
    assert sorted(NotificationMessage.objects.values_list("description", flat=True)) == [
        "and again",
        "on every topology",
    ]
    wait_until(lambda: streams_redis.xpending("NotificationStream", "demo_consumer_group")["pending"] == 0)
    assert streams_redis.xlen(dead_letter_stream("NotificationStream")) == 0


def _loop(handler: str, *, stream: str = "test-stream", max_deliveries: int = 2) -> ConsumerLoop:
    spec = ConsumerSpec(
        name=f"test-{handler}",
        stream=stream,
        group="test-group",
        handler=f"tests.workers.handlers.{handler}",
        max_deliveries=max_deliveries,
    )
    return ConsumerLoop(spec, stop=threading.Event(), consumer="c1", trims=False, block_ms=50)


@pytest.mark.django_db
def test_the_runner_acks_dead_letters_and_counts_in_one_multi(streams_redis, settings):
    # given: one good event and one that always fails
    settings.WORKER_RETRY_BASE_S = 0.01
    good, bad = _loop("create_group"), _loop("always_fail")
    publish_many("test-stream", [Event(type="tests.group.requested", payload={"name": "ok"})])
    # when
    for _ in range(3):
        good.run_once()
    publish("test-stream", Event(type="tests.group.requested", payload={"name": "doomed"}))
    for _ in range(3):
        bad.run_once()
    # then
    assert created_groups() == ["ok"]
    [(_, dead)] = streams_redis.xrange(dead_letter_stream("test-stream"))
    assert (dead["dlq_error"], dead["dlq_attempts"]) == ("RuntimeError: simulated bug", "2")
    assert streams_redis.xpending("test-stream", "test-group")["pending"] == 0
    assert consumer_counters(good.spec.name, stream="test-stream")["processed"] == 1
    assert consumer_counters(bad.spec.name, stream="test-stream")["dead_lettered"] == 1


def test_trimming_keeps_unacked_entries_and_the_cap_counts_what_it_dropped(streams_redis):
    # given: 30 entries, a group that has read (not acked) the first 10
    for n in range(30):
        streams_redis.xadd("trimmed", {"n": str(n)})
    streams_redis.xgroup_create("trimmed", "g", id="0")
    streams_redis.xreadgroup("g", "c", {"trimmed": ">"}, count=10)
    # when: trimmed below the safe point, then to a cap of 5
    kept = trim_stream("trimmed")
    capped = trim_stream("trimmed", cap=5)
    # then
    assert (kept.removed, kept.cap_removed) == (0, 0)
    assert (capped.cap_removed, capped.cap_dropped) == (25, 25)
    assert streams_redis.xlen("trimmed") == 5
    assert stream_counters("trimmed") == {"trim_cap_hits": 1, "trim_cap_dropped": 25}


@contextmanager
def weather_terminal() -> Iterator[None]:
    loop = ConsumerLoop(get_consumer("weather"), stop=threading.Event(), consumer="t1", trims=False, block_ms=100)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.stop.set()
        thread.join(10)


@pytest.mark.django_db(transaction=True)
def test_a_weather_request_gets_its_reply(streams_redis, api_client):
    # given: a terminal reading weather-requests (a reply goes to weather-responses, another slot)
    with weather_terminal():
        # when
        response = api_client.post("/WeatherForecast/city", {"city": "Oslo", "location": "Centre"}, format="json")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["city"], body["location"]) == ("Oslo", "Centre")
    [(_, reply)] = streams_redis.xrange("weather-responses")
    assert reply["requestId"] == body["requestId"]
    assert streams_redis.xpending("weather-requests", "processing-group")["pending"] == 0


def _reading(battery_id: int, timestamp: int, voltage: int = 400) -> Reading:
    return Reading(
        battery_id=battery_id,
        timestamp=timestamp,
        voltage=voltage,
        current=10,
        temperature=25,
        state_of_charge=80,
        state_of_health=99,
    )


def test_telemetry_stores_the_newest_reading_once_and_announces_each_change(streams_redis):
    # given: batteries spread over slots; battery 1 has an older reading after a newer one
    readings = [_reading(1, 200), _reading(1, 100), _reading(2, 100), _reading(3, 100, voltage=500)]
    # when: applied, then replayed
    first = readings_apply(readings=readings)
    replay = readings_apply(readings=readings)
    # then
    assert first == [True, False, True, True]
    assert replay == [False, False, False, False]
    assert streams_redis.hgetall("battery:1:data")["timestamp"] == "200"
    assert streams_redis.hgetall("battery:3:data")["voltage"] == "500"
    assert streams_redis.smembers(BATTERY_IDS_KEY) == {"1", "2", "3"}
    changes = streams_redis.xrange("battery-changes")
    assert [fields["type"] for _, fields in changes] == ["telemetry.battery.updated"] * 3
    assert changes[0][1]["payload"] == (
        '{"battery_id":1,"timestamp":200,"voltage":400,"current":10,"temperature":25,'
        '"state_of_charge":80,"state_of_health":99}'
    )


@pytest.mark.django_db
def test_the_throttle_counts_on_the_cache_redis_while_streams_are_on_the_cluster(streams_redis, redis_client):
    # given: a throttle of 2 per minute for one anonymous address
    throttle = AnonRateThrottle()
    throttle.rate = "2/minute"
    throttle.num_requests, throttle.duration = 2, 60

    def allowed() -> bool:
        request = Request(APIRequestFactory().get("/event", REMOTE_ADDR="203.0.113.9"))
        return throttle.allow_request(request, None)

    # when / then: the third request is refused
    assert [allowed(), allowed(), allowed()] == [True, True, False]
    assert any(key.startswith("cache:") for key in redis_client.keys("*throttle*"))
    if is_cluster(streams_redis):
        assert streams_redis.dbsize() == 0  # nothing of the cache reached the cluster


@pytest.mark.django_db
def test_metrics_and_readyz_read_every_stream_group_and_dead_letter(streams_redis, anon_client):
    # given: a dead letter and a group with lag on a seed stream
    streams_redis.xadd("NotificationStream", {"n": "1"})
    streams_redis.xgroup_create("NotificationStream", "demo_consumer_group", id="0")
    streams_redis.xadd(dead_letter_stream("NotificationStream"), {"dlq_error": "boom"})
    # when
    metrics = anon_client.get("/metrics")
    ready = anon_client.get("/readyz")
    # then
    text = metrics.content.decode()
    assert metrics.status_code == 200
    assert "redis_up 1.0" in text
    assert 'stream_dead_letters{stream="NotificationStream"} 1.0' in text
    assert ready.status_code == 200, ready.content
