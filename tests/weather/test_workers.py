"""Several web processes and several terminals at once: no crossed replies, no double
processing, kill -9 recovery, graceful shutdown."""

import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.helpers import wait_until
from weather.providers import CONDITIONS, BuiltinForecastProvider
from weather.replies import get_router
from weather.services import EXPIRED_KEY, ForecastAsk, forecast_replies
from workers.deadletter import dead_letter_stream
from workers.events import Event
from workers.metrics import consumer_key
from workers.publish import publish_many
from workers.registry import get_consumer

from .conftest import GROUP, REQUESTS, RESPONSES, group_done, now_ms, replies_for, wait_for_terminals

pytestmark = pytest.mark.django_db(transaction=True)


def token_of(api_client) -> str:
    return Token.objects.get(user=api_client.user).key


def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def post_from_thread(token: str, body: dict):
    """POST /WeatherForecast/city from a helper thread of this process (its own DB connection)."""
    try:
        return client_for(token).post("/WeatherForecast/city", body, format="json")
    finally:
        connection.close()  # the thread's connection would otherwise outlive the test


def ask_in_threads(token: str, cities: list[str], workers: int) -> list:
    """POST /WeatherForecast/city for each city from `workers` threads of this process."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda city: post_from_thread(token, {"city": city, "location": f"at {city}"}), cities))


def test_concurrent_callers_on_two_web_processes_each_get_their_own_reply(
    api_client, redis_client, web_process, worker_process
):
    # given: two gunicorn web processes and one worker with four terminals
    token = token_of(api_client)
    worker_process("runworker", "weather", env={"WEATHER_TERMINALS": "4"})
    webs = [web_process(), web_process()]
    wait_for_terminals(redis_client, 4)

    # when: 60 requests for 60 different cities, 16 at a time, alternating between the processes
    def ask(n: int) -> tuple[str, requests.Response]:
        city = f"City {n}"
        response = requests.post(
            f"{webs[n % 2].url}/WeatherForecast/city",
            json={"city": city, "location": f"Quarter {n}"},
            headers={"Authorization": f"Token {token}"},
            timeout=60,
        )
        return city, response

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(ask, range(60)))

    # then: every caller got the forecast of its own city, with its own request id
    assert [r.status_code for _, r in results] == [200] * 60
    bodies = [r.json() for _, r in results]
    assert [(b["city"], b["location"]) for b in bodies] == [(f"City {n}", f"Quarter {n}") for n in range(60)]
    request_ids = [b["requestId"] for b in bodies]
    assert len(set(request_ids)) == 60
    # exactly one request entry and one reply per request id, and the reply is what was returned
    entries = redis_client.xrange(REQUESTS)
    assert sorted(f["requestId"] for _, f in entries) == sorted(request_ids)
    for body in bodies:
        assert [r["data"] for r in replies_for(redis_client, body["requestId"])] == [body]
    # both web processes served requests and nothing is left waiting in either
    for web in webs:
        status = requests.get(f"{web.url}/WeatherForecast/status", timeout=10).json()
        assert status["pendingRequests"] == 0
        assert status["replyListener"]["running"] is True


def test_two_consumers_share_the_work_and_process_each_request_once(api_client, redis_client, worker_process):
    # given: two worker processes, one terminal each, each request taking a while
    slow = {"WEATHER_TERMINALS": "1", "WEATHER_PROCESSING_DELAY_MS": "150"}
    workers = [worker_process("runworker", "weather", env=slow) for _ in range(2)]
    wait_for_terminals(redis_client, 2)

    # when: 16 concurrent requests
    responses = ask_in_threads(token_of(api_client), [f"Town {n}" for n in range(16)], workers=16)

    # then: all answered; each request processed exactly once (one reply per request id);
    # both workers did some of the work
    assert [r.status_code for r in responses] == [200] * 16
    assert sorted(r.json()["city"] for r in responses) == sorted(f"Town {n}" for n in range(16))
    per_request = {r.json()["requestId"]: replies_for(redis_client, r.json()["requestId"]) for r in responses}
    assert {rid: len(replies) for rid, replies in per_request.items()} == {rid: 1 for rid in per_request}
    assert redis_client.xlen(RESPONSES) == 16
    processed_by = {replies[0]["worker"].rsplit("-", 1)[1] for replies in per_request.values()}
    assert processed_by == {str(w.pid) for w in workers}
    assert redis_client.hgetall(consumer_key("weather")) == {"processed": "16"}
    wait_until(lambda: group_done(redis_client))
    assert get_router().pending() == 0


def test_kill_9_mid_request_the_request_is_reclaimed_and_answered(api_client, redis_client, settings, worker_process):
    # given: a slow worker holding a request when it is killed
    settings.WEATHER_REPLY_TIMEOUT_S = 30
    fast_reclaim = {"WORKER_CLAIM_IDLE_MS": "1000", "WORKER_BLOCK_MS": "200", "WEATHER_TERMINALS": "1"}
    doomed = worker_process("runworker", "weather", env={**fast_reclaim, "WEATHER_PROCESSING_DELAY_MS": "60000"})
    wait_for_terminals(redis_client, 1)
    token = token_of(api_client)
    with ThreadPoolExecutor(1) as pool:
        pending_response = pool.submit(post_from_thread, token, {"city": "Kyiv"})
        wait_until(lambda: redis_client.xpending(REQUESTS, GROUP)["pending"] == 1, timeout=20)

        # when: the worker dies mid-request and another one starts
        doomed.kill()
        worker_process("runworker", "weather", env=fast_reclaim)

        # then: the new worker reclaims the entry and the caller gets its answer
        response = pending_response.result(timeout=60)
    assert response.status_code == 200, response.content
    assert response.json()["city"] == "Kyiv"
    assert len(replies_for(redis_client, response.json()["requestId"])) == 1
    assert redis_client.hget(consumer_key("weather"), "reclaimed") == "1"
    wait_until(lambda: group_done(redis_client))


def test_kill_9_after_the_caller_gave_up_times_out_cleanly(api_client, redis_client, settings, worker_process):
    # given: a slow worker holding a request whose caller waits only 1 s
    settings.WEATHER_REPLY_TIMEOUT_S = 1.0
    fast_reclaim = {"WORKER_CLAIM_IDLE_MS": "1000", "WORKER_BLOCK_MS": "200", "WEATHER_TERMINALS": "1"}
    doomed = worker_process("runworker", "weather", env={**fast_reclaim, "WEATHER_PROCESSING_DELAY_MS": "60000"})
    wait_for_terminals(redis_client, 1)
    response = api_client.post("/WeatherForecast/city", {"city": "Riga"}, format="json")
    assert response.status_code == 504
    assert redis_client.xpending(REQUESTS, GROUP)["pending"] == 1

    # when: the worker dies and another one reclaims the request
    doomed.kill()
    worker_process("runworker", "weather", env=fast_reclaim)

    # then: the request is acknowledged without a reply (the caller is gone), nothing waits
    wait_until(lambda: group_done(redis_client), timeout=30)
    assert redis_client.xlen(RESPONSES) == 0
    assert redis_client.hget("weather:metrics", "expired") == "1"
    assert get_router().pending() == 0


def test_sigterm_lets_the_worker_finish_its_request_before_exiting(api_client, redis_client, worker_process):
    # given: a worker busy with a slow request
    worker = worker_process(
        "runworker", "weather", env={"WEATHER_TERMINALS": "1", "WEATHER_PROCESSING_DELAY_MS": "1500"}
    )
    wait_for_terminals(redis_client, 1)
    token = token_of(api_client)
    with ThreadPoolExecutor(1) as pool:
        pending_response = pool.submit(post_from_thread, token, {"city": "Porto"})
        wait_until(lambda: redis_client.xpending(REQUESTS, GROUP)["pending"] == 1, timeout=20)

        # when: SIGTERM
        exit_code = worker.terminate()
        response = pending_response.result(timeout=30)

    # then: the request was answered and acknowledged before the clean exit
    assert exit_code == 0
    assert response.status_code == 200
    assert response.json()["city"] == "Porto"
    assert redis_client.xpending(REQUESTS, GROUP)["pending"] == 0


def test_sigterm_lets_a_web_process_finish_its_waiting_request(api_client, redis_client, web_process, worker_process):
    # given: a web process with a request waiting for a slow terminal
    token = token_of(api_client)
    worker_process("runworker", "weather", env={"WEATHER_TERMINALS": "1", "WEATHER_PROCESSING_DELAY_MS": "1500"})
    web = web_process()
    wait_for_terminals(redis_client, 1)
    with ThreadPoolExecutor(1) as pool:
        pending_response = pool.submit(
            lambda: requests.post(
                f"{web.url}/WeatherForecast/city",
                json={"city": "Bergen"},
                headers={"Authorization": f"Token {token}"},
                timeout=30,
            )
        )
        wait_until(lambda: redis_client.xpending(REQUESTS, GROUP)["pending"] == 1, timeout=20)

        # when: gunicorn gets SIGTERM
        exit_code = web.terminate()
        response = pending_response.result(timeout=30)

    # then: the in-flight request got its reply before the process exited
    assert exit_code == 0
    assert response.status_code == 200
    assert response.json()["city"] == "Bergen"


def weather_request(request_id: str, city: object, *, deadline_ms: int | None = None) -> Event:
    """A request entry as forecast_request writes it (`city` may be invalid on purpose)."""
    payload = {"requestId": request_id, "city": city, "location": "Old Town"}
    if deadline_ms is not None:
        payload["deadline_ms"] = deadline_ms
    return Event(
        type="weather.forecast.requested",
        payload=payload,
        extra={"requestId": request_id, "data": json.dumps(payload)},
    )


def test_a_batch_with_a_bad_request_answers_the_others_once_and_dead_letters_only_it(redis_client, worker_process):
    # given: five requests waiting, the middle one without a valid city
    cities = ["Oslo", "Lima", 42, "Baku", "Doha"]
    publish_many("weather_requests", [weather_request(f"b-{n}", city) for n, city in enumerate(cities)])

    # when: a worker whose one terminal reads up to 8 requests at a time takes them as one batch
    worker_process("runworker", "weather", env={"WEATHER_TERMINALS": "1", "WEATHER_BATCH_SIZE": "8"})
    wait_until(lambda: group_done(redis_client), timeout=30)

    # then: one reply for each good request, none for the bad one, which alone is dead-lettered
    for n, city in enumerate(cities):
        replies = replies_for(redis_client, f"b-{n}")
        if isinstance(city, str):
            assert [(r["data"]["city"], r["data"]["requestId"]) for r in replies] == [(city, f"b-{n}")]
        else:
            assert replies == []
    assert redis_client.xlen(RESPONSES) == 4
    [(_, dead)] = redis_client.xrange(dead_letter_stream(REQUESTS))
    assert (dead["requestId"], dead["dlq_attempts"]) == ("b-2", "1")
    assert redis_client.hgetall(consumer_key("weather")) == {
        "processed": "4",
        "failed": "1",
        "dead_lettered": "1",
    }


def test_the_replies_of_a_batch_are_in_order_and_skip_the_expired_requests(redis_client):
    # given: three requests of one batch, the second one past its caller's deadline
    asks = [
        ForecastAsk(request_id="a-0", city="Riga", location="", deadline_ms=now_ms() + 60_000),
        ForecastAsk(request_id="a-1", city="Kyiv", location="", deadline_ms=now_ms() - 1),
        ForecastAsk(request_id="a-2", city="Rome", location="Centro"),
    ]

    # when
    replies = forecast_replies(asks=asks)

    # then: replies for the two live ones, in order, to be sent by the runner with the ack;
    # the expired one is counted and gets none; nothing was published yet
    assert [(r.extra["requestId"], json.loads(r.extra["data"])["city"]) for r in replies] == [
        ("a-0", "Riga"),
        ("a-2", "Rome"),
    ]
    assert [r.payload for r in replies] == [json.loads(r.extra["data"]) for r in replies]
    assert redis_client.hget(EXPIRED_KEY, "expired") == "1"
    assert redis_client.xlen(RESPONSES) == 0


def test_a_terminal_lingers_after_a_small_batch_as_the_setting_says():
    # WEATHER_LINGER_MS (2 ms by default) lets a batch gather under load
    assert get_consumer("weather").linger_ms == settings.WEATHER_LINGER_MS == 2


def test_the_built_in_forecast_is_the_seeded_one_for_the_city_and_hour_whatever_is_remembered():
    # given: the provider's numbers come from random.Random("<city casefolded>|<hour>")
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    rng = random.Random("new york|2026-03-04T05:00:00+00:00")
    seeded = (
        round(rng.uniform(-20, 40), 1),
        rng.choice(CONDITIONS),
        rng.randint(10, 100),
        round(rng.uniform(0, 80), 1),
    )
    provider = BuiltinForecastProvider(delay_ms=0)
    # when: asked twice (the second answer is remembered), spelled differently, at another place
    first = provider.forecast(city="New York", location="Queens", at=at)
    second = provider.forecast(city=" NEW YORK ", location="Harlem", at=at.replace(minute=59))
    # then: the same seeded numbers, each with its own city, location and the next hour
    for forecast, city, location in ((first, "New York", "Queens"), (second, " NEW YORK ", "Harlem")):
        assert (forecast.temperature, forecast.condition, forecast.humidity, forecast.wind_speed) == seeded
        assert (forecast.city, forecast.location) == (city, location)
        assert forecast.forecast_time == datetime(2026, 3, 4, 6, tzinfo=UTC)
