"""nginx with the shipped config (docker/nginx.conf.template) in front of the shipped gunicorn.

Real processes: the Debian nginx, rendered from the same template the compose file mounts
into the official image, and gunicorn started by docker/entrypoint.sh with
docker/gunicorn.conf.py (2 processes x 4 threads, gthread) and the production settings.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from rest_framework.authtoken.models import Token

from commsplatform.devservers import NginxServer, free_port
from commsplatform.errors import error_body
from tests.deploy.conftest import EntrypointProcess, production_environment
from tests.helpers import REPO_ROOT, wait_until
from tests.sysdeps import require_program
from workers.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)

MAX_BODY = 2048  # DATA_UPLOAD_MAX_MEMORY_SIZE for both, small enough to cross in a test
SLOW_CLIENTS = 50
LIVENESS_S = 5  # generous: an answer at all, not a latency figure


@dataclass
class Stack:
    nginx: str  # base URL through the proxy
    gunicorn: str  # base URL of gunicorn itself


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn (as the web container runs it, NUM_PROXIES=1 as compose sets it) behind nginx."""
    port = free_port()
    env = production_environment(
        {
            "PORT": str(port),
            "BIND_HOST": "127.0.0.1",
            "NUM_PROXIES": "1",
            "DATA_UPLOAD_MAX_MEMORY_SIZE": str(MAX_BODY),
            "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain HTTP all the way in this test
            "THROTTLE_ANON": "3/minute",
        }
    )
    for name in ("WEB_CONCURRENCY", "WEB_THREADS"):
        env.pop(name, None)  # the shipped defaults: 2 x 4
    web = EntrypointProcess(("web",), env)
    gunicorn = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: not web.running or _answers(f"{gunicorn}/healthz"), timeout=60, message="gunicorn")
        assert web.running, web.output()
        proxy = NginxServer(
            require_program("nginx"),
            upstream=f"127.0.0.1:{port}",
            max_body_size=MAX_BODY,
            data_dir=tmp_path_factory.mktemp("nginx"),
        )
        with proxy:
            yield Stack(nginx=f"http://127.0.0.1:{proxy.port}", gunicorn=gunicorn)
            print(f"--- nginx log ---\n{proxy.log_path.read_text()[-3000:]}")
    finally:
        web.stop()
        print(f"--- gunicorn output ---\n{web.output()[-3000:]}")
        web.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


class SlowClients:
    """Connections that send a request header one byte per `interval` and never finish it."""

    def __init__(self, url: str, count: int, interval: float = 1.0) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.interval = interval
        self.stopped = threading.Event()
        self.bytes_sent = [0] * count
        self.dropped = [False] * count
        self.threads = [threading.Thread(target=self._trickle, args=(i,), daemon=True) for i in range(count)]

    def _trickle(self, index: int) -> None:
        header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000
        try:
            with socket.create_connection(self.address, timeout=10) as sock:
                for byte in header:
                    sock.sendall(bytes([byte]))
                    self.bytes_sent[index] += 1
                    if self.stopped.wait(self.interval):
                        return
        except OSError:
            self.dropped[index] = True

    def __enter__(self) -> SlowClients:
        for thread in self.threads:
            thread.start()
        # every connection open and past its first byte interval
        wait_until(lambda: min(self.bytes_sent) >= 2, timeout=30, message="every slow client sending")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=10)


def test_probes_and_posts_are_answered_while_50_slow_clients_hold_connections(stack, api_user, redis_client):
    # given: 50 connections trickling a header one byte a second (10 would take every
    # gunicorn thread: see the report), and a token
    token = Token.objects.create(user=api_user).key
    probes, posts = [], []

    with SlowClients(stack.nginx, SLOW_CLIENTS) as slow:
        # when: the liveness probe and real requests go through nginx meanwhile
        for n in range(10):
            probes.append(requests.get(f"{stack.nginx}/healthz", timeout=LIVENESS_S))
            posts.append(
                requests.post(
                    f"{stack.nginx}/event",
                    json={"description": f"during the slow clients {n}"},
                    headers={"Authorization": f"Token {token}"},
                    timeout=LIVENESS_S,
                )
            )
        still_held = [not dropped for dropped in slow.dropped]

    # then: every one answered 200, and the slow clients were connected all along
    assert [r.status_code for r in probes] == [200] * 10
    assert [r.json()["status"] for r in probes] == ["ok"] * 10
    assert [r.status_code for r in posts] == [200] * 10
    assert [r.json()["description"] for r in posts] == [f"during the slow clients {n}" for n in range(10)]
    assert redis_client.xlen("NotificationStream") == 10
    assert all(still_held)


def test_a_client_cannot_choose_its_throttle_identity_with_x_forwarded_for(stack):
    # given: anonymous requests limited to 3 a minute per client address
    # when: one client sends 4, each claiming another address in X-Forwarded-For
    statuses = [
        requests.get(f"{stack.nginx}/api/v1/", headers={"X-Forwarded-For": f"203.0.113.{n}"}, timeout=10).status_code
        for n in range(4)
    ]

    # then: all four are counted as the one address nginx saw, and the 4th is refused
    assert statuses == [200, 200, 200, 429]


def test_a_client_cannot_claim_https_through_nginx(stack):
    # given: a plain-HTTP client that says it came over HTTPS
    spoofed = {"X-Forwarded-Proto": "https"}

    # when: it asks through nginx, and (for contrast) gunicorn itself
    through_nginx = requests.get(f"{stack.nginx}/api/v1/", headers=spoofed, timeout=10)
    direct = requests.get(f"{stack.gunicorn}/api/v1/", headers=spoofed, timeout=10)

    # then: nginx replaced the claim with the real scheme: Django saw plain HTTP (no HSTS)
    assert through_nginx.status_code == 200
    assert "Strict-Transport-Security" not in through_nginx.headers
    assert direct.headers["Strict-Transport-Security"].startswith("max-age=")


def test_nginx_refuses_exactly_the_bodies_django_would_with_the_json_error_shape(stack, api_user, redis_client):
    # given: a body of exactly DATA_UPLOAD_MAX_MEMORY_SIZE bytes, and one a byte longer
    headers = {"Authorization": f"Token {Token.objects.create(user=api_user).key}", "Content-Type": "application/json"}
    envelope = len(json.dumps({"description": ""}))
    largest = json.dumps({"description": "x" * (MAX_BODY - envelope)}).encode()
    too_large = json.dumps({"description": "x" * (MAX_BODY - envelope + 1)}).encode()
    assert (len(largest), len(too_large)) == (MAX_BODY, MAX_BODY + 1)

    # when
    accepted = requests.post(f"{stack.nginx}/event", data=largest, headers=headers, timeout=10)
    refused = requests.post(f"{stack.nginx}/event", data=too_large, headers=headers, timeout=10)
    direct = requests.post(f"{stack.gunicorn}/event", data=too_large, headers=headers, timeout=10)

    # then: the largest reaches Django and is published; the other is refused by nginx in
    # the API's JSON shape, as Django itself refuses it (413, commsplatform.middleware);
    # nothing else was published
    assert accepted.status_code == 200, accepted.text
    assert refused.status_code == 413
    assert refused.headers["Content-Type"] == "application/json"
    assert refused.json() == error_body(413, f"The request body is larger than {MAX_BODY} bytes.")
    assert direct.status_code == 413
    assert direct.headers["Content-Type"] == "application/json"
    assert redis_client.xlen("NotificationStream") == 1
    assert OutboxEvent.objects.count() == 0


def test_nginx_own_errors_are_json_in_the_api_error_shape(tmp_path):
    # given: nginx in front of a port where nothing listens
    template = (REPO_ROOT / "docker" / "nginx.conf.template").read_text()
    with NginxServer(require_program("nginx"), upstream=f"127.0.0.1:{free_port()}", data_dir=tmp_path) as proxy:
        # when
        response = requests.get(f"http://127.0.0.1:{proxy.port}/healthz", timeout=10)

    # then: 502 in the shape of commsplatform.errors, and so is every error page of the template
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == error_body(502, "The application server is not answering; retry later.")
    pages = re.findall(r"location @error_(\d+) \{\s*default_type application/json;\s*return (\d+) '(.*)';", template)
    targets = re.findall(r"error_page [\d =]+ @error_(\d+);", template)
    assert [code for code, status, _ in pages] == [status for _, status, _ in pages]
    assert {400, 413, 414, 500, 502, 503, 504} <= {int(code) for code, _, _ in pages}
    for code, _, body in pages:
        page = json.loads(body.replace("${DATA_UPLOAD_MAX_MEMORY_SIZE}", str(MAX_BODY)))
        assert page == error_body(int(code), page["description"])
    assert sorted(targets) == sorted(code for code, _, _ in pages)
