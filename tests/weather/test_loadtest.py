"""`manage.py loadtest weather` against a running gunicorn and worker."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from commsplatform.devservers import free_port
from weather.loadtest import CITY_LOCATIONS

from .conftest import REQUESTS, wait_for_terminals

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("loadtest", "weather", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_concurrent_load_test_reports_success_and_latency(api_client, redis_client, web_process, worker_process):
    # given
    token = Token.objects.get(user=api_client.user).key
    worker_process("runworker", "weather")
    web = web_process()
    wait_for_terminals(redis_client, 1)

    # when
    out, err = run(
        "--mode",
        "concurrent",
        "--count",
        "30",
        "--concurrency",
        "5",
        "--url",
        web.url,
        "--token",
        token,
        "--json",
    )

    # then: 30 successes, the seed's 15 pairs twice, figures in order
    report = json.loads(out)
    assert (report["requests"], report["succeeded"], report["failed"], report["success_rate"]) == (
        30,
        30,
        0,
        1.0,
    )
    assert report["statuses"] == {"200": 30}
    assert report["min_ms"] <= report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"] <= report["max_ms"]
    cities = sorted(json.loads(f["data"])["city"] for _, f in redis_client.xrange(REQUESTS))
    assert cities == sorted([city for city, _ in CITY_LOCATIONS] * 2)
    assert "30/30 (100%)" in err


def test_sequential_load_test_prints_a_readable_report(api_client, redis_client, web_process, worker_process):
    token = Token.objects.get(user=api_client.user).key
    worker_process("runworker", "weather")
    web = web_process()
    wait_for_terminals(redis_client, 1)

    out, _ = run("--count", "3", "--url", web.url, "--token", token)

    assert out.splitlines()[0].startswith("Success: 3/3 (100.0%)  statuses {'200': 3}")
    assert out.splitlines()[1].startswith("Latency ms: avg ")


def test_load_test_stops_when_the_health_check_fails(redis_client):
    with pytest.raises(CommandError, match=r"/healthz unreachable"):
        run("--count", "5", "--url", f"http://127.0.0.1:{free_port()}", "--token", "any")

    assert redis_client.xlen(REQUESTS) == 0


def test_load_test_finds_the_staff_token_and_the_server_make_run_serves(
    staff_client, redis_client, web_process, worker_process, settings
):
    # given: a staff user with a token (make run's admin) and the web URL from the
    # endpoints file (settings.API_URL); neither is passed
    worker_process("runworker", "weather")
    web = web_process()
    wait_for_terminals(redis_client, 1)
    settings.API_URL = web.url

    # when
    out, err = run("--count", "3", "--json")

    # then
    assert json.loads(out)["statuses"] == {"200": 3}
    assert f"against {web.url}" in err
    assert redis_client.xlen(REQUESTS) == 3


def test_load_test_with_a_refused_token_fails_and_says_why(api_client, redis_client, web_process):
    web = web_process()

    with pytest.raises(CommandError, match=r"^4 of 4 requests failed \(401: the server refused the token\)$"):
        run("--count", "4", "--url", web.url, "--token", "not-a-token")

    assert redis_client.xlen(REQUESTS) == 0


def test_load_test_without_any_token_says_so_and_sends_nothing(api_client, redis_client, web_process):
    # given: only a non-staff user has a token
    web = web_process()

    with pytest.raises(CommandError, match=r"^no token: pass --token or set LOADTEST_TOKEN"):
        run("--count", "4", "--url", web.url)

    assert redis_client.xlen(REQUESTS) == 0
