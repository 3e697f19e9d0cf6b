"""Several web processes and several terminals at once: no crossed replies, no double
processing, kill -9 recovery, graceful shutdown."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.helpers import wait_until
from weather.replies import get_router

from .conftest import GROUP, REQUESTS, RESPONSES, group_done, replies_for, wait_for_terminals

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
    assert redis_client.hgetall("workers:metrics:consumer:weather") == {"processed": "16"}
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
    assert redis_client.hget("workers:metrics:consumer:weather", "reclaimed") == "1"
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
