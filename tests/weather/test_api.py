"""The seed's routes and the clean route, answered by a real `weather` worker process."""

import json
import threading
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from tests.helpers import wait_until
from weather.providers import BuiltinForecastProvider
from weather.replies import get_router
from workers.consumer import ConsumerLoop
from workers.deadletter import dead_letter_stream
from workers.events import Event
from workers.publish import publish, publish_many
from workers.registry import get_consumer

from .conftest import REQUESTS, RESPONSES, group_done, replies_for, wait_for_terminals

pytestmark = pytest.mark.django_db(transaction=True)

SEED_FIELDS = [
    "city",
    "location",
    "forecastTime",
    "temperature",
    "condition",
    "humidity",
    "windSpeed",
    "requestId",
]


def replies_counted(kind: str) -> float:
    return REGISTRY.get_sample_value(f"weather_replies_{kind}_total") or 0.0


def reply_counts() -> dict[str, float]:
    return {kind: replies_counted(kind) for kind in ("late", "foreign", "duplicate")}


def test_post_city_returns_the_forecast_of_its_own_request(api_client, redis_client, worker_process):
    # given: a weather worker reading processing-group
    worker_process("runworker", "weather")
    wait_for_terminals(redis_client, 1)

    # when
    response = api_client.post("/WeatherForecast/city", {"city": "New York", "location": "Downtown"}, format="json")

    # then: the seed's fields, the forecast of the built-in provider for that city and hour
    assert response.status_code == 200, response.content
    body = response.json()
    assert list(body) == SEED_FIELDS
    forecast_time = datetime.fromisoformat(body["forecastTime"].replace("Z", "+00:00"))
    expected = BuiltinForecastProvider(delay_ms=0).forecast(
        city="New York", location="Downtown", at=forecast_time - timedelta(hours=1)
    )
    assert body == {
        "city": "New York",
        "location": "Downtown",
        "forecastTime": body["forecastTime"],
        "temperature": expected.temperature,
        "condition": expected.condition,
        "humidity": expected.humidity,
        "windSpeed": expected.wind_speed,
        "requestId": body["requestId"],
    }
    # both stream entries carry the seed's requestId and data
    [(_, request_fields)] = redis_client.xrange(REQUESTS)
    assert request_fields["requestId"] == body["requestId"]
    assert json.loads(request_fields["data"]) == {
        "requestId": body["requestId"],
        "city": "New York",
        "location": "Downtown",
    }
    [reply] = replies_for(redis_client, body["requestId"])
    assert reply["data"] == body
    assert reply["type"] == "weather.forecast.produced"
    assert get_router().pending() == 0


def test_the_clean_route_answers_in_snake_case(api_client, redis_client, worker_process):
    worker_process("runworker", "weather")
    wait_for_terminals(redis_client, 1)

    response = api_client.post("/api/v1/weather/forecasts/", {"city": "Paris"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert sorted(body) == sorted(
        [
            "request_id",
            "city",
            "location",
            "forecast_time",
            "temperature",
            "condition",
            "humidity",
            "wind_speed",
        ]
    )
    assert (body["city"], body["location"]) == ("Paris", "")
    assert [r["data"]["requestId"] for r in replies_for(redis_client, body["request_id"])] == [body["request_id"]]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"location": "Downtown"},
        {"city": ""},
        {"city": "   ", "location": "x"},
        {"city": 12},
        {"city": None},
    ],
)
def test_missing_or_blank_city_is_400_and_publishes_nothing(api_client, redis_client, payload):
    response = api_client.post("/WeatherForecast/city", payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["title"]) == (400, "Bad Request")
    assert "city" in body["errors"]
    assert redis_client.xlen(REQUESTS) == 0


def test_a_body_that_is_not_json_is_400(api_client, redis_client):
    response = api_client.generic("POST", "/WeatherForecast/city", "city=Paris", content_type="text/plain")

    assert response.status_code == 400
    assert response.json()["description"].startswith("The request body is not valid JSON")
    assert redis_client.xlen(REQUESTS) == 0


def test_forecast_requests_need_a_login(anon_client, redis_client):
    response = anon_client.post("/WeatherForecast/city", {"city": "Paris"}, format="json")

    assert response.status_code == 401
    assert redis_client.xlen(REQUESTS) == 0


def test_get_weather_forecast_lists_five_sample_days(api_client):
    response = api_client.get("/WeatherForecast")

    assert response.status_code == 200
    items = response.json()
    assert len(items) == 5
    for item in items:
        assert sorted(item) == ["date", "summary", "temperatureC", "temperatureF"]
        assert item["temperatureF"] == 32 + int(item["temperatureC"] / 0.5556)


def test_health_and_status_are_public_and_report_the_closed_circuit(anon_client):
    health = anon_client.get("/WeatherForecast/health")
    status = anon_client.get("/WeatherForecast/status")
    healthz = anon_client.get("/healthz")

    assert health.status_code == 200
    assert (health.json()["status"], health.json()["circuit"]) == ("Healthy", "closed")
    assert status.status_code == 200
    assert status.json()["circuit"]["state"] == "closed"
    assert status.json()["pendingRequests"] == 0
    assert healthz.status_code == 200
    weather = healthz.json()["checks"]["weather"]
    assert (weather["ok"], weather["circuit"], weather["pending_requests"], weather["redis_ok"]) == (
        True,
        "closed",
        0,
        True,
    )
    assert weather["redis_rtt_ms"] >= 0


def test_no_consumer_means_504_after_the_timeout_and_nothing_left_waiting(
    api_client, anon_client, redis_client, settings, worker_process
):
    # given: no weather worker, a short reply timeout
    settings.WEATHER_REPLY_TIMEOUT_S = 0.5

    # when
    response = api_client.post("/WeatherForecast/city", {"city": "Oslo", "location": "Sentrum"}, format="json")

    # then: 504 with a clear message, no waiter left, the request counted in the queue depth
    assert response.status_code == 504
    body = response.json()
    [(_, entry)] = redis_client.xrange(REQUESTS)
    assert body == {
        "status": 504,
        "title": "Gateway Timeout",
        "description": f"No forecast within 0.5 s for request {entry['requestId']}: "
        "the weather terminals are down or overloaded. Retry later.",
    }
    assert get_router().pending() == 0
    metrics = anon_client.get("/metrics").content.decode()
    assert "ingress_pending_requests 0.0" in metrics
    assert "weather_queue_depth 1.0" in metrics

    # and when a worker starts later, it skips the expired request: no reply is produced
    worker_process("runworker", "weather")
    wait_until(lambda: group_done(redis_client), timeout=30)
    assert redis_client.xlen(RESPONSES) == 0
    assert redis_client.hget("weather:metrics", "expired") == "1"
    assert "weather_requests_expired_total 1.0" in anon_client.get("/metrics").content.decode()


def test_a_reply_after_the_timeout_counts_as_late(api_client, redis_client, settings, worker_process):
    # given: a terminal slower than the caller's patience
    settings.WEATHER_REPLY_TIMEOUT_S = 1.0
    worker_process("runworker", "weather", env={"WEATHER_PROCESSING_DELAY_MS": "2500"})
    wait_for_terminals(redis_client, 1)
    before = reply_counts()

    # when
    response = api_client.post("/WeatherForecast/city", {"city": "Lima", "location": "Miraflores"}, format="json")

    # then: 504 now; the reply arrives later, finds no waiter and counts as late, not foreign
    assert response.status_code == 504
    assert get_router().pending() == 0
    [(_, entry)] = redis_client.xrange(REQUESTS)
    wait_until(lambda: replies_for(redis_client, entry["requestId"]), timeout=30)
    wait_until(lambda: replies_counted("late") == before["late"] + 1, timeout=10)
    assert reply_counts() == {**before, "late": before["late"] + 1}
    assert get_router().pending() == 0


def test_replies_to_another_process_count_as_foreign_not_late(redis_client):
    # given: this process's listener running, waiting for nothing
    router = get_router()
    router.start()
    before = reply_counts()

    # when: another web process's request is answered on the shared reply stream
    redis_client.xadd(RESPONSES, {"requestId": "someone-elses", "data": "{}"})

    # then: counted as foreign; nothing late, nothing waiting
    wait_until(lambda: replies_counted("foreign") == before["foreign"] + 1, timeout=10)
    assert reply_counts() == {**before, "foreign": before["foreign"] + 1}
    assert router.pending() == 0


def test_a_second_reply_to_an_answered_request_counts_as_duplicate(redis_client):
    # given: a waiter of this process
    router = get_router()
    router.start()
    waiter = router.expect("mine")
    before = reply_counts()
    try:
        # when: its request is answered twice (a reclaimed request processed again)
        redis_client.xadd(RESPONSES, {"requestId": "mine", "data": '{"n": 1}'})
        redis_client.xadd(RESPONSES, {"requestId": "mine", "data": '{"n": 2}'})

        # then: the waiter has the first reply, the second counts as a duplicate
        wait_until(lambda: replies_counted("duplicate") == before["duplicate"] + 1, timeout=10)
        assert waiter.reply == '{"n": 1}'
        assert reply_counts() == {**before, "duplicate": before["duplicate"] + 1}
    finally:
        router.forget("mine")


def test_metrics_expose_the_seed_gauges(anon_client, redis_client, worker_process):
    worker_process("runworker", "weather", env={"WEATHER_TERMINALS": "3"})
    wait_for_terminals(redis_client, 3)

    metrics = anon_client.get("/metrics").content.decode()

    assert "ingress_pending_requests 0.0" in metrics
    assert "redis_circuit_state 0.0" in metrics
    assert "weather_terminals 3.0" in metrics
    assert "weather_active_terminals 0.0" in metrics
    assert "weather_queue_depth 0.0" in metrics


@pytest.mark.django_db
def test_the_reply_stream_is_capped(redis_client, settings):
    # given: a small cap on the group-less reply stream, and many more requests than that
    settings.WEATHER_RESPONSES_MAXLEN = 100
    publish_many(
        "weather_requests",
        [
            Event(
                type="weather.forecast.requested",
                payload={"requestId": f"r{n}", "city": "Rome", "location": "Centro"},
                extra={"requestId": f"r{n}"},
            )
            for n in range(1000)
        ],
    )
    # when: a terminal answers them all
    terminal = ConsumerLoop(get_consumer("weather"), stop=threading.Event(), consumer="t", trims=False, block_ms=5)
    while terminal.run_once():
        pass

    # then: the stream was trimmed (approximately: whole radix-tree nodes of 100 entries)
    assert redis_client.xlen(RESPONSES) < 300
    assert redis_client.xrevrange(RESPONSES, count=1)[0][1]["requestId"] == "r999"


def test_a_request_without_a_city_is_dead_lettered_without_a_reply(redis_client, worker_process):
    # given: a running worker
    worker_process("runworker", "weather")
    wait_for_terminals(redis_client, 1)

    # when: an entry that is not a valid weather request arrives
    bad = Event(type="weather.forecast.requested", payload={"location": "nowhere"}, extra={"requestId": "r-1"})
    publish("weather_requests", bad)

    # then: it goes to the dead-letter stream at once, acknowledged, and nobody gets a reply
    wait_until(lambda: redis_client.xlen(dead_letter_stream(REQUESTS)) == 1, timeout=20)
    [(_, dead)] = redis_client.xrange(dead_letter_stream(REQUESTS))
    assert dead["requestId"] == "r-1"
    assert dead["dlq_error"].startswith("PermanentError: not a weather request")
    assert dead["dlq_attempts"] == "1"
    wait_until(lambda: group_done(redis_client))
    assert redis_client.xlen(RESPONSES) == 0
