"""Seed 000's configuration variables reach the settings the ingest uses."""

import json
import os
import subprocess
import sys

import redis

from commsplatform.devservers import RedisServer
from tests.helpers import REPO_ROOT

PRINT_SETTINGS = (
    "import json; from django.conf import settings; from workers.connection import get_redis; "
    "get_redis().set('written-by', 'child'); "
    "print(json.dumps({k: getattr(settings, k) for k in "
    "('REDIS_URL', 'KAFKA_BOOTSTRAP_SERVERS', 'KAFKA_TOPIC', 'KAFKA_GROUP')}))"
)


def run_child(env: dict[str, str]) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "KAFKA_"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PRINT_SETTINGS],
        cwd=REPO_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_seeds_redis_and_kafka_variables_are_honoured_without_redis_url():
    with RedisServer(password="s3cret") as server:
        # when
        seen = run_child(
            {
                "REDIS_HOST": server.host,
                "REDIS_PORT": str(server.port),
                "REDIS_DB": "3",
                "REDIS_PASS": "s3cret",
                "KAFKA_BOOTSTRAP_SERVERS": "broker-1:9092,broker-2:9092",
                "KAFKA_TOPIC": "ems-telemetry",
                "KAFKA_GROUP": "ems-group",
            }
        )

        # then: the child wrote to database 3 of the password-protected server
        def database(number: int) -> redis.Redis:
            return redis.Redis(server.host, server.port, db=number, password="s3cret", decode_responses=True)

        assert database(3).get("written-by") == "child"
        assert database(0).get("written-by") is None
    assert seen == {
        "REDIS_URL": f"redis://:s3cret@{server.host}:{server.port}/3",
        "KAFKA_BOOTSTRAP_SERVERS": "broker-1:9092,broker-2:9092",
        "KAFKA_TOPIC": "ems-telemetry",
        "KAFKA_GROUP": "ems-group",
    }


def test_redis_url_wins_over_the_seeds_variables():
    with RedisServer() as server:
        # when
        seen = run_child({"REDIS_URL": server.url, "REDIS_HOST": "nowhere.invalid", "REDIS_DB": "5"})
        # then
        assert server.client().get("written-by") == "child"
    assert seen["REDIS_URL"] == server.url


def test_the_seeds_kafka_broker_variable_is_a_fallback():
    with RedisServer() as server:
        seen = run_child({"REDIS_URL": server.url, "KAFKA_BROKER": "old-broker:9092"})
    assert seen["KAFKA_BOOTSTRAP_SERVERS"] == "old-broker:9092"
