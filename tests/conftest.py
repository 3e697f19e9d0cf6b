"""Fixtures shared by the whole suite: real servers, API clients, worker subprocesses.

PostgreSQL and Redis for the session are started by tests.plugin (before Django reads
its settings); the rest start on demand. See tests/helpers.py for `wait_until`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from commsplatform.devservers import KafkaBroker, RedisServer, SmtpServer
from tests.helpers import WorkerProcess, subprocess_environment
from tests.plugin import session_servers


@dataclass(frozen=True)
class ExternalRedis:
    """A Redis given by REDIS_URL: nothing to start or stop."""

    url: str

    def client(self, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("decode_responses", True)
        return redis.Redis.from_url(self.url, **kwargs)


@dataclass(frozen=True)
class ExternalKafka:
    """A broker given by KAFKA_BOOTSTRAP_SERVERS."""

    bootstrap: str


def _reset_redis_clients() -> None:
    # workers.connection caches clients per URL; after a URL change they must be rebuilt.
    try:
        from workers.connection import reset_clients
    except ImportError:
        return
    reset_clients()


# --- Redis --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_server() -> RedisServer | ExternalRedis:
    """The session's Redis: the one tests.plugin started, or REDIS_URL from the environment."""
    return session_servers.get("redis") or ExternalRedis(os.environ["REDIS_URL"])


@pytest.fixture(scope="session")
def _redis_admin(redis_server: RedisServer | ExternalRedis) -> Iterator[redis.Redis]:
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture(scope="session", autouse=True)
def _close_outbox_thread(django_db_setup, django_db_blocker) -> Iterator[None]:
    """The outbox's sent-rows thread has its own connection to the test database: close it
    before the database is dropped."""
    yield
    from workers.publish import sent_rows

    with django_db_blocker.unblock():
        sent_rows.close()


@pytest.fixture(autouse=True)
def _flush_redis(_redis_admin: redis.Redis) -> None:
    # Every test starts from an empty database, including the cache and throttle counters.
    _redis_admin.flushdb()


@pytest.fixture
def redis_client(redis_server: RedisServer | ExternalRedis) -> Iterator[redis.Redis]:
    """A redis-py client (decode_responses=True) on the session Redis, emptied before the test."""
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture
def own_redis_server(settings: Any) -> Iterator[RedisServer]:
    """A Redis of the test's own, safe to restart or kill; Django's REDIS_URL points at it."""
    with RedisServer() as server:
        settings.REDIS_URL = server.url
        _reset_redis_clients()
        yield server
    _reset_redis_clients()


# --- SMTP and Kafka -----------------------------------------------------------------------
@pytest.fixture
def smtp_server(settings: Any) -> Iterator[SmtpServer]:
    """A recording SMTP server; Django sends real SMTP to it (not to the locmem outbox)."""
    with SmtpServer() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = server.host
        settings.EMAIL_PORT = server.port
        yield server


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker | ExternalKafka]:
    """A Kafka-protocol broker for the session (KAFKA_BOOTSTRAP_SERVERS wins if set)."""
    from django.test import override_settings

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield ExternalKafka(os.environ["KAFKA_BOOTSTRAP_SERVERS"])
        return
    with KafkaBroker() as broker, override_settings(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap):
        yield broker


# --- API clients --------------------------------------------------------------------------
def _token_client(user: Any) -> Any:
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.user = user
    return client


@pytest.fixture
def api_user(db: None, django_user_model: Any) -> Any:
    """A normal (non-staff) user in every role: operators, producers and viewers (commsplatform.roles)."""
    from django.contrib.auth.models import Group

    from commsplatform.roles import ROLES, roles_ensure

    user = django_user_model.objects.create_user(username="alice", email="alice@example.com", password="x")
    roles_ensure()  # the migration made them, but a transactional test's flush removed them
    user.groups.set(Group.objects.filter(name__in=ROLES))
    return user


@pytest.fixture
def staff_user(db: None, django_user_model: Any) -> Any:
    """A staff user (admin site access, no superuser powers)."""
    return django_user_model.objects.create_user(
        username="staff", email="staff@example.com", password="x", is_staff=True
    )


@pytest.fixture
def api_client(api_user: Any) -> Any:
    """DRF APIClient authenticated by token as `api_user`."""
    return _token_client(api_user)


@pytest.fixture
def staff_client(staff_user: Any) -> Any:
    """DRF APIClient as `staff_user`: token for the API, session login for the admin."""
    client = _token_client(staff_user)
    client.force_login(staff_user)
    return client


@pytest.fixture
def anon_client() -> Any:
    """DRF APIClient without credentials."""
    from rest_framework.test import APIClient

    return APIClient()


# --- worker subprocesses ------------------------------------------------------------------
@pytest.fixture
def worker_process() -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: `worker_process("runworker", "notifications", env={...})` starts manage.py.

    Use with `@pytest.mark.django_db(transaction=True)` so the child sees committed rows.
    Every process still running at teardown gets SIGTERM (then SIGKILL); the output of
    each is printed, so it shows up in the report of a failing test.
    """
    started: list[WorkerProcess] = []

    def start(*args: str, env: Mapping[str, str] | None = None) -> WorkerProcess:
        process = WorkerProcess(args, subprocess_environment(env))
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
        print(f"--- {process!r} output ---\n{process.output()}")
        process.close()
