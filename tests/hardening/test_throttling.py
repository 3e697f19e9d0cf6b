"""Throttling across processes: the request history lives in the Redis cache, so two gunicorn
processes share one budget per anonymous client (by IP) and one per token (by user).

Rates (settings.REST_FRAMEWORK, env THROTTLE_ANON / THROTTLE_USER): anonymous 60/minute on the
public API routes; per token 100000/minute (the ingest path, POST /event, carries thousands of
events a second per producer token). Exempt: /healthz, /readyz, /metrics (plain Django views,
probed every few seconds by the orchestrator and Prometheus) and the weather seed's
/WeatherForecast/health and /status (probes too).
"""

import pytest
import requests
from django.core.cache import cache
from rest_framework.authtoken.models import Token

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
    assert 1 <= int(response.headers["Retry-After"]) <= 60
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
    # then: throttled, and the history is one list in Redis
    assert_throttled(response)
    assert redis_client.exists("cache:1:throttle_anon_127.0.0.1")
    assert len(cache.get("throttle_anon_127.0.0.1")) == 3  # the timestamps of the 3 allowed calls


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
