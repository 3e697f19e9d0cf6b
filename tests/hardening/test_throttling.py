"""Throttling across processes: the counters live in Redis, so two gunicorn processes share
one budget per anonymous client (by IP) and one per token (by user).

Rates (settings.REST_FRAMEWORK, env THROTTLE_ANON / THROTTLE_USER): anonymous 60/minute on the
public API routes; per token 100000/minute (the ingest path, POST /event, carries thousands of
events a second per producer token). Exempt: /healthz, /readyz, /metrics (plain Django views,
probed every few seconds by the orchestrator and Prometheus) and the weather seed's
/WeatherForecast/health and /status (probes too).
"""

import pytest
import requests
from django.contrib.auth.models import AnonymousUser
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from commsplatform.throttling import UserRateThrottle
from tests.helpers import subprocess_environment
from tests.weather.conftest import WebProcess

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_web_processes():
    env = subprocess_environment({"THROTTLE_ANON": "3/minute", "THROTTLE_USER": "4/minute"})
    processes = [WebProcess(env, threads=2), WebProcess(env, threads=2)]
    yield processes
    for process in processes:
        print(f"--- gunicorn :{process.port} ---\n{process.output()}")
        process.close()


def assert_throttled(response: requests.Response) -> None:
    assert response.status_code == 429, response.text
    # the sliding-window estimate can ask for up to two windows
    assert 1 <= int(response.headers["Retry-After"]) <= 120
    body = response.json()
    assert (body["status"], body["title"]) == (429, "Too Many Requests")
    assert body["description"].startswith("Request was throttled.")


def test_the_anonymous_rate_holds_across_two_gunicorn_processes(two_web_processes, redis_client):
    a, b = two_web_processes
    # given: 3 anonymous calls, spread over both processes
    statuses = [requests.get(f"{web.url}/api/v1/", timeout=10).status_code for web in (a, b, a)]
    assert statuses == [200, 200, 200]
    # when: a fourth, on either process
    response = requests.get(f"{b.url}/api/v1/", timeout=10)
    # then: throttled, and the counters in Redis hold the 3 allowed calls (not the refused one)
    assert_throttled(response)
    keys = redis_client.keys("cache:1:throttle_anon_127.0.0.1:*")
    assert sum(int(redis_client.get(key)) for key in keys) == 3


def test_the_rate_is_per_token_across_processes(two_web_processes, api_user, staff_user):
    a, b = two_web_processes
    alice = {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}
    other = {"Authorization": f"Token {Token.objects.create(user=staff_user).key}"}
    # given: alice's 4 calls, over both processes
    for web in (a, b, a, b):
        assert requests.get(f"{web.url}/report", headers=alice, timeout=10).status_code == 200
    # when / then: her fifth is throttled on either process; another token is not
    assert_throttled(requests.get(f"{a.url}/report", headers=alice, timeout=10))
    assert_throttled(requests.get(f"{b.url}/api/v1/orders/", headers=alice, timeout=10))
    assert requests.get(f"{b.url}/report", headers=other, timeout=10).status_code == 200


def test_health_probes_are_not_throttled(two_web_processes):
    a, _ = two_web_processes
    for path in ["/healthz", "/readyz", "/WeatherForecast/health"] * 3:
        assert requests.get(f"{a.url}{path}", timeout=10).status_code == 200, path
    assert requests.get(f"{a.url}/metrics", timeout=10).status_code == 200


# --- the sliding-window estimate, on a clock the test sets ---------------------------------
class ThreePerMinute(UserRateThrottle):
    rate = "3/minute"


def check_at(seconds: float) -> tuple[bool, float | None]:
    """(allowed, Retry-After if refused) for a request `seconds` into the test's clock."""
    throttle = ThreePerMinute()
    throttle.timer = lambda: 6_000_000.0 + seconds  # windows start at 0, 60, 120, ...
    request = Request(APIRequestFactory().get("/"))
    request.user = AnonymousUser()
    allowed = throttle.allow_request(request, None)
    return allowed, None if allowed else throttle.wait()


def allowed_at(seconds: float) -> bool:
    return check_at(seconds)[0]


def test_the_window_allows_the_rate_and_does_not_count_refusals(redis_client):
    assert [allowed_at(s) for s in (1, 2, 3, 4)] == [True, True, True, False]
    # 3 in this window: the estimate falls below 3 only in the next one, once a third of it
    # has passed (ceil(3 × 2/3) = 2): 55 + 20 s after second 5
    assert check_at(5) == (False, pytest.approx(75))
    keys = redis_client.keys("cache:1:throttle_user_127.0.0.1:*")
    assert [int(redis_client.get(key)) for key in keys] == [3]


def test_the_last_window_weighs_by_the_share_not_yet_elapsed(redis_client):
    # given: 3 requests at the end of one window
    assert all(allowed_at(s) for s in (57, 58, 59))
    # then: early in the next one they still count in full; by a third of it, ceil(3 × 2/3) = 2
    # leaves room for one; two windows on, nothing is left of them
    assert not allowed_at(61)
    assert allowed_at(80)
    assert not allowed_at(81)
    assert all(allowed_at(s) for s in (180, 181, 182))


def test_while_the_counter_store_is_down_requests_are_served_unthrottled(api_client, own_redis_server, settings):
    # given: the cache (where the counters live) is a Redis that is down
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": own_redis_server.url}}
    own_redis_server.stop()
    # when / then: the API answers, not a 500 from the throttle
    assert [api_client.get("/api/v1/orders/").status_code for _ in range(3)] == [200, 200, 200]
