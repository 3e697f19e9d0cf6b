"""Session servers for the test suite, started before Django reads its settings.

Loaded with `-p tests.plugin` (see pyproject.toml). pytest-django imports the settings in
its own `pytest_load_initial_conftests`; ours is `tryfirst`, so PostgreSQL and Redis are
up and their URLs are in os.environ by then. A URL already set in the environment wins:
`DATABASE_URL=... REDIS_URL=... pytest` runs against those servers instead (and every test
FLUSHDBs that Redis database).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from commsplatform.devservers import PostgresServer, RedisServer

# Servers this plugin started, by name ("postgres", "redis"); conftest.py reads it.
session_servers: dict[str, Any] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    options = early_config.known_args_namespace
    if getattr(options, "help", False) or getattr(options, "version", False):
        return
    # The tests name their servers; a `make run` in this checkout must not leak into them.
    os.environ.setdefault("DEVSTACK_ENDPOINTS_FILE", "")
    try:
        if not os.environ.get("DATABASE_URL"):
            session_servers["postgres"] = PostgresServer().start()
            os.environ["DATABASE_URL"] = session_servers["postgres"].url
        if not os.environ.get("REDIS_URL"):
            session_servers["redis"] = RedisServer().start()
            os.environ["REDIS_URL"] = session_servers["redis"].url
    except Exception as exc:
        _stop_all()
        raise pytest.UsageError(f"tests.plugin could not start the test servers:\n{exc}") from exc


def pytest_report_header(config: pytest.Config) -> list[str]:
    started = ", ".join(f"{name} {server.url}" for name, server in session_servers.items())
    return [f"test servers: {started or 'none started (URLs from the environment)'}"]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_all()


def _stop_all() -> None:
    for name in list(session_servers):
        session_servers.pop(name).close()
