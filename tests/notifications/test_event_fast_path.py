"""POST /event's common case is answered in front of the middleware chain
(commsplatform.fastpath); the answer must be the chain's, to the header.

Two gunicorn processes under the production settings share the database and Redis (so
the throttle budget): one serves `commsplatform.wsgi:application` (the fast path in
front), the other `commsplatform.wsgi:django_application` (the chain alone, caching no
token, so every request takes DRF's whole view). Every request is sent to both and the
answers compared.
"""

import importlib
import io
import json
import re
import secrets
import sys

import pytest
import requests
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from rest_framework.authtoken.models import Token
from rest_framework.renderers import JSONRenderer

from commsplatform.fastpath import FastPaths
from tests.helpers import subprocess_environment
from tests.weather.conftest import WebProcess

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "NotificationStream"
HTTPS = {"X-Forwarded-Proto": "https"}  # as nginx passes it on (SECURE_PROXY_SSL_HEADER)
VARYING = {"Date", "Content-Length"}  # compared apart: the clock, and the body's length


@pytest.fixture
def secret_key(settings):
    # The processes' key, here too: a session this test makes is valid there.
    settings.SECRET_KEY = secrets.token_hex(32)
    return settings.SECRET_KEY


@pytest.fixture
def fast_and_chain(secret_key):
    env = subprocess_environment(
        {
            "DJANGO_SETTINGS_MODULE": "commsplatform.settings.production",
            "DJANGO_SECRET_KEY": secret_key,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "THROTTLE_USER": "6/minute",
            "LOG_FORMAT": "text",
        }
    )
    # The chain's process keeps no verified token: each request takes the whole DRF view.
    chain_env = {**env, "API_TOKEN_CACHE_S": "0"}
    processes = [
        WebProcess(env, threads=2),
        WebProcess(chain_env, threads=2, app="commsplatform.wsgi:django_application"),
    ]
    yield processes
    for process in processes:
        print(f"--- gunicorn :{process.port} ---\n{process.output()}")
        process.close()


def post_to_both(processes, **kwargs) -> tuple[requests.Response, requests.Response]:
    fast, chain = (
        requests.post(f"{process.url}/event", timeout=10, allow_redirects=False, **kwargs) for process in processes
    )
    return fast, chain


def assert_same_answer(fast: requests.Response, chain: requests.Response) -> None:
    """Status, every header (in order; Date and Content-Length apart) and the body's keys."""
    assert fast.status_code == chain.status_code, (fast.text, chain.text)
    assert list(fast.headers) == list(chain.headers)
    assert {k: v for k, v in fast.headers.items() if k not in VARYING} == {
        k: v for k, v in chain.headers.items() if k not in VARYING
    }
    for response in (fast, chain):
        if "Content-Length" in response.headers:
            assert int(response.headers["Content-Length"]) == len(response.content)
    if chain.headers.get("Content-Type") == "application/json":
        assert list(fast.json()) == list(chain.json())
    if chain.status_code == 200:  # the bytes DRF's renderer makes of those values
        assert fast.content == JSONRenderer().render(fast.json())
        assert chain.content == JSONRenderer().render(chain.json())


def route_counts(process: WebProcess) -> dict[str, float]:
    """POST /event's lines of /metrics: requests by status, and the latency histogram's count."""
    text = requests.get(f"{process.url}/metrics", timeout=10).text
    found = {}
    for status, value in re.findall(r'http_requests_total\{method="POST",route="event",status="(\d+)"\} (\S+)', text):
        found[status] = float(value)
    (observed,) = re.findall(r'http_request_duration_seconds_count\{method="POST",route="event"\} (\S+)', text)
    found["observed"] = float(observed)
    return found


def test_the_fast_path_answers_as_the_middleware_chain_does(fast_and_chain, api_user, redis_client):
    token = Token.objects.create(user=api_user).key
    auth = {"Authorization": f"Token {token}", **HTTPS}
    # given: the token verified by each process (its first call takes the DRF view)
    assert [r.status_code for r in post_to_both(fast_and_chain, json={"description": "warm"}, headers=auth)] == [
        200,
        200,
    ]

    # when: common-case calls, then calls past the budget (6/minute, shared by both)
    answered = [post_to_both(fast_and_chain, json={"description": f"event {n}"}, headers=auth) for n in (1, 2)]
    throttled = post_to_both(fast_and_chain, json={"description": "one too many"}, headers=auth)

    # then: the same answers, security headers and all
    for fast, chain in answered:
        assert_same_answer(fast, chain)
        assert fast.status_code == 200
        for header, value in {
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Allow": "POST, OPTIONS",
            "Content-Type": "application/json",
        }.items():
            assert fast.headers[header] == value, header
        assert "Vary" not in fast.headers and "Set-Cookie" not in fast.headers
        assert fast.json()["description"] == chain.json()["description"]
    fast, chain = throttled
    assert_same_answer(fast, chain)
    assert fast.status_code == 429
    assert abs(int(fast.headers["Retry-After"]) - int(chain.headers["Retry-After"])) <= 1
    waits = [re.sub(r"\d+", "N", r.json()["description"]) for r in throttled]
    assert waits[0] == waits[1] == "Request was throttled. Expected available in N seconds."

    # and: the stream holds the answered events, the same fields from either process, nothing refused
    entries = [fields for _, fields in redis_client.xrange(STREAM)]
    sent = [r for pair in answered for r in pair]
    assert [json.loads(fields["payload"]) for fields in entries][2:] == [
        {key: r.json()[key] for key in ("id", "description", "timestamp")} for r in sent
    ]
    assert len(entries) == 6
    assert {tuple(fields) for fields in entries} == {("id", "type", "version", "occurred_at", "payload")}
    assert {fields["type"] for fields in entries} == {"notifications.message.published"}

    # and: each process counted its requests in the same metrics
    for process in fast_and_chain:
        assert route_counts(process) == {"200": 3.0, "429": 1.0, "observed": 4.0}


def test_what_the_fast_path_does_not_take_gets_the_chains_answer(fast_and_chain, api_user, redis_client):
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    token = Token.objects.create(user=api_user).key
    auth = {"Authorization": f"Token {token}"}
    post_to_both(fast_and_chain, json={"description": "warm"}, headers={**auth, **HTTPS})
    length = redis_client.xlen(STREAM)
    session = importlib.import_module(django_settings.SESSION_ENGINE).SessionStore()
    session.update(
        {
            SESSION_KEY: str(api_user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: api_user.get_session_auth_hash(),
        }
    )
    session.save()
    cookie = {"Cookie": f"{django_settings.SESSION_COOKIE_NAME}={session.session_key}"}
    failures_key = "cache:1:authfail:127.0.0.1"

    # when: plain http (no X-Forwarded-Proto), a session caller without a CSRF token,
    # a wrong token, a query string, a host not allowed
    redirected = post_to_both(fast_and_chain, json={"description": "over http"}, headers={**auth, "Host": "127.0.0.1"})
    session_caller = post_to_both(fast_and_chain, json={"description": "from a browser"}, headers={**cookie, **HTTPS})
    wrong = post_to_both(
        fast_and_chain, json={"description": "guess"}, headers={"Authorization": f"Token {'0' * 40}", **HTTPS}
    )
    with_query = [
        requests.post(f"{p.url}/event?x=%01", json={"description": "q"}, headers={**auth, **HTTPS}, timeout=10)
        for p in fast_and_chain
    ]
    bad_host = post_to_both(fast_and_chain, json={"description": "h"}, headers={**auth, **HTTPS, "Host": "evil.test"})

    # then: the chain's answers from both: the HTTPS redirect, CSRF, 401, 400
    for (fast, chain), status in zip(
        (redirected, session_caller, wrong, with_query, bad_host), (301, 403, 401, 400, 400), strict=True
    ):
        assert_same_answer(fast, chain)
        assert fast.status_code == status, fast.text
        assert fast.content == chain.content
    assert redirected[0].headers["Location"] == "https://127.0.0.1/event"
    assert "CSRF" in session_caller[0].json()["description"]
    # and: nothing written, and each wrong token counted once against the address
    assert redis_client.xlen(STREAM) == length
    assert redis_client.get(failures_key) == "2"


# --- in process: the fast path answers in front of the chain, and only the reviewed chain ---
def _environ(token: str, description: str) -> dict:
    body = json.dumps({"description": description}).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/event",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def _call(app, environ: dict) -> tuple[str, bytes]:
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status

    result = app(environ, start_response)
    body = b"".join(result)
    if hasattr(result, "close"):
        result.close()
    return answer["status"], body


def test_the_common_case_skips_the_chain_only_when_the_chain_is_the_reviewed_one(api_user, settings, redis_client):
    token = Token.objects.create(user=api_user).key
    reached_chain = []
    chain = WSGIHandler()

    def counted_chain(environ, start_response):
        reached_chain.append(json.loads(environ["wsgi.input"].getvalue())["description"])
        return chain(environ, start_response)

    app = FastPaths(counted_chain, [("POST", "/event")])
    # given: the token verified by a first call (the chain's DRF view)
    assert _call(app, _environ(token, "first"))[0] == "200 OK"
    # when: the next call
    status, body = _call(app, _environ(token, "second"))
    # then: answered without the chain, and written
    assert status == "200 OK" and json.loads(body)["description"] == "second"
    assert reached_chain == ["first"]
    # a body the common case does not take is put back for the chain
    assert _call(app, _environ(token, "  padded  "))[0] == "200 OK"
    assert reached_chain == ["first", "  padded  "]

    # given: a chain with one more middleware (the fast path was not checked against it)
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    chain = WSGIHandler()
    app = FastPaths(counted_chain, [("POST", "/event")])
    # then: every request takes the chain
    assert _call(app, _environ(token, "third"))[0] == "200 OK"
    assert reached_chain == ["first", "  padded  ", "third"]
    descriptions = [json.loads(fields["payload"])["description"] for _, fields in redis_client.xrange(STREAM)]
    assert descriptions == ["first", "second", "padded", "third"]
