"""POST /WeatherForecast/city's common case is answered in front of the middleware chain
(commsplatform.fastpath), as POST /event's is; the answer must be the chain's, to the header.

As in tests/notifications/test_event_fast_path.py: two gunicorn processes under the
production settings share the database and Redis (so the throttle budget and the weather
terminal); one serves `commsplatform.wsgi:application`, the other the chain alone
(`django_application`, caching no token). Every request goes to both.
"""

import re
import secrets

import pytest
import requests
from rest_framework.authtoken.models import Token

from tests.helpers import subprocess_environment
from tests.notifications.test_event_fast_path import HTTPS, assert_same_answer

from .conftest import REQUESTS, WebProcess, replies_for, wait_for_terminals

pytestmark = pytest.mark.django_db(transaction=True)

SEED_FIELDS = ["city", "location", "forecastTime", "temperature", "condition", "humidity", "windSpeed", "requestId"]


@pytest.fixture
def fast_and_chain(settings):
    settings.SECRET_KEY = secrets.token_hex(32)  # production refuses a short one
    env = subprocess_environment(
        {
            "DJANGO_SETTINGS_MODULE": "commsplatform.settings.production",
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "THROTTLE_USER": "6/minute",
            "LOG_FORMAT": "text",
        }
    )
    processes = [
        WebProcess(env, threads=2),
        WebProcess({**env, "API_TOKEN_CACHE_S": "0"}, threads=2, app="commsplatform.wsgi:django_application"),
    ]
    yield processes
    for process in processes:
        print(f"--- gunicorn :{process.port} ---\n{process.output()}")
        process.close()


def ask_both(processes, body: dict, headers: dict) -> tuple[requests.Response, requests.Response]:
    fast, chain = (
        requests.post(f"{p.url}/WeatherForecast/city", json=body, headers=headers, timeout=15, allow_redirects=False)
        for p in processes
    )
    return fast, chain


def route_counts(process: WebProcess) -> dict[str, float]:
    text = requests.get(f"{process.url}/metrics", timeout=10).text
    found = {
        status: float(value)
        for status, value in re.findall(
            r'http_requests_total\{method="POST",route="WeatherForecast/city",status="(\d+)"\} (\S+)', text
        )
    }
    (observed,) = re.findall(
        r'http_request_duration_seconds_count\{method="POST",route="WeatherForecast/city"\} (\S+)', text
    )
    found["observed"] = float(observed)
    return found


def test_the_fast_path_answers_as_the_middleware_chain_does(fast_and_chain, worker_process, api_user, redis_client):
    # given: a terminal, and the token verified by each process (its first call takes the DRF view)
    worker_process("runworker", "weather")
    wait_for_terminals(redis_client, 1)
    auth = {"Authorization": f"Token {Token.objects.create(user=api_user).key}", **HTTPS}
    warm = ask_both(fast_and_chain, {"city": "Oslo"}, auth)
    assert [r.status_code for r in warm] == [200, 200], warm[0].text

    # when: common-case calls, then calls past the budget (6/minute, shared by both)
    answered = [ask_both(fast_and_chain, {"city": city, "location": "Harbour"}, auth) for city in ("Lima", "Pune")]
    length = redis_client.xlen(REQUESTS)
    refused = ask_both(fast_and_chain, {"city": "Oslo"}, auth)

    # then: the same answers, security headers and all, each the reply to its own request
    for fast, chain in answered:
        assert_same_answer(fast, chain)
        assert fast.status_code == 200
        assert fast.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
        assert fast.headers["X-Frame-Options"] == "DENY"
        assert fast.headers["Allow"] == "POST, OPTIONS"
        for response in (fast, chain):
            body = response.json()
            assert list(body) == SEED_FIELDS
            [reply] = replies_for(redis_client, body["requestId"])
            assert reply["data"] == body
        assert {k: v for k, v in fast.json().items() if k not in ("requestId", "forecastTime")} == {
            k: v for k, v in chain.json().items() if k not in ("requestId", "forecastTime")
        }
    fast, chain = refused
    assert_same_answer(fast, chain)
    assert fast.status_code == 429
    assert fast.json()["title"] == chain.json()["title"] == "Too Many Requests"
    assert redis_client.xlen(REQUESTS) == length  # nothing asked of the terminal

    # and: each process counted its requests in the same metrics
    for process in fast_and_chain:
        assert route_counts(process) == {"200": 3.0, "429": 1.0, "observed": 4.0}


def test_the_shipped_application_takes_the_weather_route_in_front_of_the_chain():
    from commsplatform.wsgi import application
    from weather.apis import WeatherForecastCityApi

    routes = application.routes()
    # the view's own common case, labelled for the metrics as the chain labels it
    assert routes[("POST", "/WeatherForecast/city")].common_case == WeatherForecastCityApi.common_case
    assert routes[("POST", "/WeatherForecast/city")].label == "WeatherForecast/city"
    assert ("POST", "/event") in routes
