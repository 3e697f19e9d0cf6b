"""Weather fixtures: gunicorn web processes beside the test, and helpers on the streams."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import redis

from commsplatform.devservers import free_port, port_is_open
from tests.helpers import REPO_ROOT, subprocess_environment, wait_until

REQUESTS = "weather-requests"
RESPONSES = "weather-responses"
GROUP = "processing-group"


@pytest.fixture(autouse=True)
def _fresh_breaker() -> Iterator[None]:
    # The breaker and its counters are per process: no test inherits another's failures.
    from weather.resilience import reset_breaker

    reset_breaker()
    yield
    reset_breaker()


@pytest.fixture(scope="session", autouse=True)
def _stop_reply_listeners() -> Iterator[None]:
    yield
    from weather.replies import stop_listeners

    stop_listeners()  # before the session's Redis goes away


class WebProcess:
    """`gunicorn commsplatform.wsgi` (gthread) on a free port, output in a temp file.

    `app`: another WSGI callable, e.g. `commsplatform.wsgi:django_application` (the
    middleware chain without the fast paths in front)."""

    def __init__(
        self, env: Mapping[str, str], *, workers: int = 1, threads: int = 8, app: str = "commsplatform.wsgi"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
        self._process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", app,
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
                "--graceful-timeout", "30", "--log-level", "warning",
            ],
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_until(lambda: port_is_open("127.0.0.1", self.port) or self._process.poll() is not None, timeout=30)
        if self._process.poll() is not None:
            raise RuntimeError(f"gunicorn did not start:\n{self.output()}")

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def terminate(self, timeout: float = 30) -> int:
        if self.running:
            self._process.send_signal(signal.SIGTERM)
        return self._process.wait(timeout)

    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def close(self) -> None:
        if self.running:
            self._process.send_signal(signal.SIGINT)  # quick shutdown: do not wait for idle keep-alives
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        # Its own session: a worker the master left behind (it was killed) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


@pytest.fixture
def web_process() -> Iterator[Callable[..., WebProcess]]:
    """Factory: a gunicorn web process against the test database and Redis.

    Use with `@pytest.mark.django_db(transaction=True)` (the token must be committed).
    """
    started: list[WebProcess] = []

    def start(env: Mapping[str, str] | None = None, **kwargs) -> WebProcess:
        process = WebProcess(subprocess_environment(env), **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        print(f"--- gunicorn :{process.port} output ---\n{process.output()}")
        process.close()


def replies_for(client: redis.Redis, request_id: str) -> list[dict]:
    """Every reply entry on weather-responses for `request_id` (fields, data decoded)."""
    return [
        {**fields, "data": json.loads(fields["data"])}
        for _, fields in client.xrange(RESPONSES)
        if fields.get("requestId") == request_id
    ]


def wait_for_terminals(client: redis.Redis, count: int, timeout: float = 30) -> None:
    """Until `count` consumers have joined processing-group (the workers are reading)."""

    def joined() -> bool:
        try:
            return len(client.xinfo_consumers(REQUESTS, GROUP)) >= count
        except redis.ResponseError:  # no stream or no group yet
            return False

    wait_until(joined, timeout=timeout, message=f"{count} terminal(s) in {GROUP}")


def group_done(client: redis.Redis) -> bool:
    """Every request entry was delivered to the group and acknowledged."""
    try:
        group = next(g for g in client.xinfo_groups(REQUESTS) if g["name"] == GROUP)
    except (redis.ResponseError, StopIteration):
        return False
    last = client.xrevrange(REQUESTS, count=1)
    return group["pending"] == 0 and bool(last) and group["last-delivered-id"] == last[0][0]


def now_ms() -> int:
    return int(time.time() * 1000)
