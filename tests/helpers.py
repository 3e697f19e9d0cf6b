"""Helpers for tests that run or wait on other processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parent.parent


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, message: str | None = None
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    Raises AssertionError after `timeout` seconds, naming the predicate (or `message`)
    and its last value, so a failing wait says what it was waiting for.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last value: {value!r})")
        time.sleep(interval)


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL (django-environ syntax) for a Django DATABASES entry.

    Used to hand the test database to a subprocess. A unix-socket HOST goes into the URL
    path (`postgres://user@//sock/dir/name`), the only form django-environ parses back
    into HOST.
    """
    engine = settings_dict["ENGINE"]
    name = str(settings_dict["NAME"])
    if engine.endswith("sqlite3"):
        if name in ("", ":memory:") or name.startswith("file:memorydb"):
            raise RuntimeError(
                "An in-memory SQLite test database cannot be shared with a subprocess; "
                "run the tests against PostgreSQL (the default) or a file database."
            )
        return f"sqlite:///{Path(name).resolve()}"
    if not engine.endswith("postgresql"):
        raise RuntimeError(f"database_url() does not know the engine {engine}")
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = str(settings_dict.get("HOST") or "")
    port = settings_dict.get("PORT")
    if host.startswith("/"):
        url = f"postgres://{auth}/{host}/{quote(name)}"
    else:
        url = f"postgres://{auth}{host}{f':{port}' if port else ''}/{quote(name)}"
    options = {key: value for key, value in (settings_dict.get("OPTIONS") or {}).items() if value is not None}
    return f"{url}?{urlencode(options)}" if options else url


class WorkerProcess:
    """`python manage.py <args>` running beside the test, its output in a temp file."""

    def __init__(self, args: tuple[str, ...], env: Mapping[str, str]) -> None:
        self.args = args
        self._log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)
        self._process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.poll()

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def send_signal(self, signum: int) -> None:
        """Deliver a signal (e.g. a second SIGTERM) without waiting."""
        if self.running:
            self._process.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit and return the exit code (subprocess.TimeoutExpired on timeout)."""
        return self._process.wait(timeout)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait for the graceful exit; returns the exit code."""
        self.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        """SIGKILL the process and anything it started, as a crash would; returns -9."""
        if self.running:
            os.killpg(self._process.pid, signal.SIGKILL)
        return self.wait(10)

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return Path(self._log.name).read_text(errors="replace")

    def stop(self) -> None:
        """Make sure it is gone: SIGTERM, and SIGKILL if it does not exit within 10 s."""
        if self.running:
            try:
                self.terminate(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        """Stop it and delete its output file."""
        self.stop()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"<WorkerProcess manage.py {' '.join(self.args)} pid={self.pid} rc={self.returncode}>"


def subprocess_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process needs to see what this test sees.

    The test database (not the one in os.environ's DATABASE_URL) and the Redis, SMTP and
    Kafka addresses Django is configured with right now, including per-test overrides.
    """
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "commsplatform.settings.base"),
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=settings.REDIS_URL,
        EMAIL_HOST=str(settings.EMAIL_HOST),
        EMAIL_PORT=str(settings.EMAIL_PORT),
        KAFKA_BOOTSTRAP_SERVERS=str(settings.KAFKA_BOOTSTRAP_SERVERS),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env
