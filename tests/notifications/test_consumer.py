"""Seed 001's consumer as a real worker process: store every event exactly once, through
Redis restarts and kill -9."""

import json
import signal

import psycopg
import pytest
from django.db import connection

from notifications.models import NotificationMessage
from tests.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "NotificationStream"
GROUP = "demo_consumer_group"
FAST_RECLAIM = {"WORKER_CLAIM_IDLE_MS": "1000", "WORKER_BLOCK_MS": "200"}


def stored_descriptions() -> list[str]:
    return sorted(NotificationMessage.objects.values_list("description", flat=True))


def pending(redis_client) -> int:
    """Entries delivered to the group and not acked (0 before the worker made the group)."""
    groups = redis_client.xinfo_groups(STREAM) if redis_client.exists(STREAM) else []
    return next((g["pending"] for g in groups if g["name"] == GROUP), 0)


def post(api_client, text: str) -> dict:
    response = api_client.post("/event", {"description": text}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_worker_stores_each_message_and_acks_it(api_client, redis_client, worker_process):
    worker = worker_process("runworker", "notifications")
    posted = [post(api_client, f"event {n}") for n in range(5)]

    wait_until(lambda: NotificationMessage.objects.count() == 5, timeout=20)

    assert stored_descriptions() == [f"event {n}" for n in range(5)]
    assert sorted(NotificationMessage.objects.values_list("message_id", flat=True)) == sorted(p["id"] for p in posted)
    wait_until(lambda: pending(redis_client) == 0)
    assert worker.terminate() == 0
    assert "stopped" in worker.output()


def test_a_redis_restart_between_two_posts_loses_nothing(api_client, own_redis_server, worker_process):
    # given: web (this process) and a worker running against a Redis we can restart
    worker_process("runworker", "notifications", env=FAST_RECLAIM)
    post(api_client, "before the restart")
    wait_until(lambda: stored_descriptions() == ["before the restart"], timeout=20)
    # when: Redis restarts (no persistence: the stream and the group are gone)
    own_redis_server.restart()
    post(api_client, "after the restart")
    # then: the worker recreates its group and stores the new message; nobody was restarted
    wait_until(lambda: stored_descriptions() == ["after the restart", "before the restart"], timeout=30)


def test_kill_9_with_unacked_entries_then_reclaim_stores_every_event_once(api_client, redis_client, worker_process):
    # given: 20 events, and a worker that reads them in one batch but cannot write them
    posted = [post(api_client, f"event {n}") for n in range(20)]
    locker = psycopg.connect(**connection.get_connection_params())
    try:
        locker.execute(f"LOCK TABLE {NotificationMessage._meta.db_table} IN EXCLUSIVE MODE")
        doomed = worker_process("runworker", "notifications", "--consumer-name", "doomed", env=FAST_RECLAIM)
        wait_until(lambda: pending(redis_client) == 20, timeout=30)
        # when: it is killed holding 20 un-acked entries
        assert doomed.kill() == -signal.SIGKILL
    finally:
        locker.close()  # closing rolls back and releases the lock
    assert NotificationMessage.objects.count() == 0
    assert redis_client.xpending(STREAM, GROUP)["consumers"] == [{"name": "doomed-0", "pending": 20}]
    # and a second consumer starts
    worker_process("runworker", "notifications", "--consumer-name", "rescuer", env=FAST_RECLAIM)
    # then: it reclaims them after the idle time; every event is stored exactly once
    wait_until(lambda: NotificationMessage.objects.count() == 20, timeout=30)
    wait_until(lambda: pending(redis_client) == 0, timeout=10)
    assert stored_descriptions() == sorted(f"event {n}" for n in range(20))
    assert sorted(NotificationMessage.objects.values_list("message_id", flat=True)) == sorted(p["id"] for p in posted)
    assert len({json.loads(f["payload"])["id"] for _, f in redis_client.xrange(STREAM)}) == 20
