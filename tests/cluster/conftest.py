"""A real Redis Cluster (3 masters, 3 replicas of the system redis-server) for the session,
and `streams_redis`: the tests that take it run once on the single session Redis and once
with REDIS_URL pointing at the cluster (the cache and the throttles stay on the single
Redis, as CACHE_REDIS_URL would put them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from commsplatform.devservers.redis_cluster import RedisClusterServer
from workers.connection import get_redis, reset_clients


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServer]:
    with RedisClusterServer() as cluster:
        yield cluster


@pytest.fixture
def on_cluster(redis_cluster: RedisClusterServer, settings: Any) -> Iterator[RedisClusterServer]:
    """Django's REDIS_URL is the (emptied) session cluster for this test."""
    redis_cluster.flushall()
    settings.REDIS_URL = redis_cluster.url
    reset_clients()
    yield redis_cluster
    reset_clients()


@pytest.fixture(params=["single", "cluster"])
def streams_redis(request: pytest.FixtureRequest) -> redis.Redis:
    """get_redis() for the test: the single session Redis, then the cluster."""
    if request.param == "cluster":
        request.getfixturevalue("on_cluster")
    return get_redis()
