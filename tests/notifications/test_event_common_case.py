"""POST /event's common case (a token the process has verified) skips DRF's machinery; it
must answer exactly as the DRF path does, and throttle the same shared budget."""

import threading
from urllib.parse import urlsplit

import pytest
import redis
import requests
from rest_framework.authtoken.models import Token

from tests.helpers import subprocess_environment
from tests.weather.conftest import WebProcess

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "NotificationStream"


@pytest.fixture
def web_process():
    process = WebProcess(subprocess_environment({"THROTTLE_USER": "3/minute"}), threads=2)
    yield process
    print(process.output())
    process.close()


def test_the_cached_token_answer_matches_the_drf_answer_and_the_budget_is_shared(web_process, api_user, redis_client):
    token = {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}
    url = f"{web_process.url}/event"
    # given: the first call verifies the token (the DRF path), the next ones find it cached
    first = requests.post(url, json={"description": "one"}, headers=token, timeout=10)
    second = requests.post(url, json={"description": "two"}, headers=token, timeout=10)
    third = requests.post(url, data=b'{"description": "three"}', headers=token, timeout=10)
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    for cached in (second, third):
        assert set(cached.json()) == set(first.json()) == {"id", "description", "timestamp", "stream_id"}
        for header in ("Content-Type", "Vary", "Allow", "X-Frame-Options", "X-Content-Type-Options"):
            assert cached.headers.get(header) == first.headers.get(header), header
    assert [fields["payload"] for _, fields in redis_client.xrange(STREAM)][-3:] == [
        f'{{"id":{r.json()["id"]},"description":"{r.json()["description"]}","timestamp":"{r.json()["timestamp"]}"}}'
        for r in (first, second, third)
    ]
    length = redis_client.xlen(STREAM)
    # when: a fourth within the minute, on the cached path
    refused = requests.post(url, json={"description": "four"}, headers=token, timeout=10)
    # then: the DRF path's 429, and nothing written
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 120
    assert (refused.json()["status"], refused.json()["title"]) == (429, "Too Many Requests")
    assert redis_client.xlen(STREAM) == length


def test_a_body_the_serializer_would_change_goes_through_the_drf_path(web_process, api_user, redis_client):
    token = {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}
    url = f"{web_process.url}/event"
    assert requests.post(url, json={"description": "warm"}, headers=token, timeout=10).status_code == 200
    length = redis_client.xlen(STREAM)
    # when: cached token, but a blank description and a padded one
    blank = requests.post(url, json={"description": "   "}, headers=token, timeout=10)
    padded = requests.post(url, json={"description": "  padded  "}, headers=token, timeout=10)
    # then: refused as DRF refuses (nothing written), and trimmed as DRF trims
    assert blank.status_code == 400, blank.text
    assert padded.status_code == 200 and padded.json()["description"] == "padded"
    assert redis_client.xlen(STREAM) == length + 1


# What a new connection of the pool (another gunicorn thread's first call) or its health check sends.
CONNECTION_SETUP = {"HELLO", "CLIENT", "SELECT", "AUTH", "PING"}


def redis_commands_during(redis_client, action) -> list[str]:
    """The commands clients other than this test sent to Redis while `action` ran (MONITOR),
    and, apart, those a Lua script ran."""
    marker = "end-of-action"
    seen: list[dict] = []
    with redis_client.monitor() as monitor:
        started = threading.Event()

        def listen() -> None:
            for command in monitor.listen():
                started.set()
                if marker in command["command"]:
                    return
                seen.append(command)

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        while not started.is_set():  # MONITOR shows its own first PING once it is listening
            redis_client.ping()
            started.wait(0.05)
        action()
        redis_client.echo(marker)
        listener.join(10)
    web = [
        c["command"].split()[0].upper()
        for c in seen
        if c["client_type"] == "tcp" and c["command"].split()[0].upper() not in CONNECTION_SETUP
    ]
    lua = [c["command"].split()[0].upper() for c in seen if c["client_type"] == "lua"]
    return web + [f"lua:{name}" for name in lua]


def test_the_throttle_and_the_xadd_share_one_round_trip(web_process, api_user, redis_client):
    token = {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}
    url = f"{web_process.url}/event"
    # given: the token verified, and the script loaded, by earlier calls
    for text in ("one", "two"):
        assert requests.post(url, json={"description": text}, headers=token, timeout=10).status_code == 200

    # when: the next call, then a refused one (THROTTLE_USER is 3/minute)
    def two_calls() -> None:
        assert requests.post(url, json={"description": "three"}, headers=token, timeout=10).status_code == 200
        assert requests.post(url, json={"description": "four"}, headers=token, timeout=10).status_code == 429

    commands = redis_commands_during(redis_client, two_calls)

    # then: one command each from the web process (the script counts, checks and writes),
    # and the refused one counted nothing and wrote nothing
    assert [c for c in commands if not c.startswith("lua:")] == ["EVALSHA", "EVALSHA"]
    assert [c for c in commands if c.startswith("lua:")] == [*_one_allowed_in_lua(), *_one_refused_in_lua()]
    assert [fields["payload"].split('"description":"')[1].split('"')[0] for _, fields in redis_client.xrange(STREAM)][
        -3:
    ] == ["one", "two", "three"]
    (counter,) = redis_client.keys("cache:1:throttle_user_*")
    assert redis_client.get(counter) == "3"


def _one_allowed_in_lua() -> list[str]:
    # the user throttle's window (the anonymous one does not apply to a token), then the write
    return ["lua:INCR", "lua:EXPIRE", "lua:GET", "lua:XADD"]


def _one_refused_in_lua() -> list[str]:
    return ["lua:INCR", "lua:EXPIRE", "lua:GET", "lua:DECR"]


def test_with_the_counters_on_another_redis_the_throttle_and_the_xadd_take_a_round_trip_each(
    api_user, redis_client, redis_server
):
    # given: the cache (the throttles' counters) on another database than the streams
    other = urlsplit(redis_server.url)._replace(path="/9").geturl()
    process = WebProcess(subprocess_environment({"THROTTLE_USER": "3/minute", "CACHE_REDIS_URL": other}), threads=2)
    counters = redis.Redis.from_url(other, decode_responses=True)
    try:
        token = {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}
        url = f"{process.url}/event"
        for text in ("one", "two"):
            assert requests.post(url, json={"description": text}, headers=token, timeout=10).status_code == 200

        # when: the third call on the cached path, and a refused fourth
        def two_calls() -> None:
            assert requests.post(url, json={"description": "three"}, headers=token, timeout=10).status_code == 200
            assert requests.post(url, json={"description": "four"}, headers=token, timeout=10).status_code == 429

        commands = redis_commands_during(redis_client, two_calls)
    finally:
        print(process.output())
        process.close()
    # then: the counters' pipeline and the XADD, apart; the same budget, kept in the cache's database
    assert commands == ["INCRBY", "EXPIRE", "GET", "XADD", "INCRBY", "EXPIRE", "GET", "DECRBY"]
    assert redis_client.xlen(STREAM) == 3
    (counter,) = counters.keys("cache:1:throttle_user_*")
    assert counters.get(counter) == "3"
    counters.flushdb()
