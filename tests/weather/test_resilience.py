"""Redis going away and coming back: retries, the circuit breaker, /healthz and /metrics."""

import pytest

from tests.helpers import wait_until
from weather.resilience import breaker_state, trial_due

from .conftest import wait_for_terminals

pytestmark = pytest.mark.django_db(transaction=True)

UNREACHABLE = "Redis is unreachable; the forecast request was not sent. Retry shortly."


@pytest.fixture
def fast_breaker(settings):
    settings.WEATHER_BREAKER_FAIL_MAX = 3
    settings.WEATHER_BREAKER_RESET_S = 1.0
    settings.WEATHER_REDIS_RETRIES = 2
    settings.WEATHER_RETRY_BASE_S = 0.01
    settings.WEATHER_REPLY_TIMEOUT_S = 5.0
    settings.REDIS_RETRIES = 0


def ask(client, city="Madrid"):
    return client.post("/WeatherForecast/city", {"city": city, "location": "Centro"}, format="json")


def test_redis_down_opens_the_breaker_and_redis_back_closes_it(
    api_client, anon_client, own_redis_server, fast_breaker, worker_process
):
    # given: a working request/reply against a Redis we can stop
    worker_process("runworker", "weather", env={"WORKER_BLOCK_MS": "200"})
    wait_for_terminals(own_redis_server.client(), 1)
    assert ask(api_client).status_code == 200

    # when: Redis stops
    own_redis_server.stop()

    # then: each request is retried, fails with 503; the breaker counts consecutive failures
    for failures in (1, 2):
        response = ask(api_client)
        assert (response.status_code, response.json()["description"]) == (503, UNREACHABLE)
        assert (breaker_state()["state"], breaker_state()["consecutive_failures"]) == ("closed", failures)
    # the third failure opens it
    tripping = ask(api_client)
    assert tripping.status_code == 503
    assert tripping.json()["description"].startswith(
        "The weather service is temporarily unavailable: Redis circuit open after 3 consecutive failures"
    )
    assert breaker_state()["state"] == "open"
    # while open, requests are refused at once (no Redis call: the failure count stays put)
    refused = ask(api_client)
    assert refused.status_code == 503
    assert "Redis circuit open" in refused.json()["description"]
    assert refused["Retry-After"] in ("1", "2")
    assert breaker_state()["consecutive_failures"] == 3
    # /healthz says why; /metrics shows the open state
    healthz = anon_client.get("/healthz")
    assert healthz.status_code == 503
    weather = healthz.json()["checks"]["weather"]
    assert (weather["ok"], weather["circuit"], weather["redis_ok"], weather["pending_requests"]) == (
        False,
        "open",
        False,
        0,
    )
    assert weather["reason"].startswith("Redis circuit open after 3 consecutive failures (last error: ")
    assert anon_client.get("/WeatherForecast/health").json()["status"] == "Unhealthy"
    assert "redis_circuit_state 1.0" in anon_client.get("/metrics").content.decode()

    # when: the open period passes with Redis still down, the trial call fails: open again
    wait_until(trial_due, timeout=10)
    assert "Redis circuit open" in ask(api_client).json()["description"]
    assert breaker_state()["state"] == "open"

    # when: Redis is back
    own_redis_server.start()

    # then: after the open period a trial request goes through, the breaker closes, and
    # requests succeed again (the worker recreated its group on the empty Redis)
    response = wait_until(lambda: (r := ask(api_client, "Sevilla")).status_code == 200 and r, timeout=60)
    assert response.json()["city"] == "Sevilla"
    assert breaker_state() | {"since": None} == {
        "state": "closed",
        "code": 0,
        "consecutive_failures": 0,
        "fail_max": 3,
        "reset_timeout_s": 1.0,
        "since": None,
    }
    healthz = anon_client.get("/healthz")
    assert healthz.status_code == 200
    assert healthz.json()["checks"]["weather"]["circuit"] == "closed"
    assert "redis_circuit_state 0.0" in anon_client.get("/metrics").content.decode()


def test_healthz_makes_the_trial_call_when_the_open_period_is_over(
    api_client, anon_client, own_redis_server, fast_breaker
):
    # given: an open breaker
    own_redis_server.stop()
    for _ in range(3):
        ask(api_client)
    assert breaker_state()["state"] == "open"
    # when: Redis is back and the open period is over
    own_redis_server.start()
    wait_until(trial_due, timeout=10)
    healthz = anon_client.get("/healthz")
    # then: the probe's own PING closed the breaker
    assert healthz.status_code == 200
    assert healthz.json()["checks"]["weather"]["circuit"] == "closed"
    assert breaker_state()["state"] == "closed"


def test_errors_that_are_not_redis_failures_do_not_count(settings):
    from weather.resilience import guarded

    def bug():
        raise ValueError("a bug, not an outage")

    for _ in range(10):
        with pytest.raises(ValueError, match="a bug, not an outage"):
            guarded(bug)

    assert (breaker_state()["state"], breaker_state()["consecutive_failures"]) == ("closed", 0)
