"""A poison entry that hangs its worker: `runworker notifications` is killed -9 on it again
and again. Its deliveries are counted for real, so after WORKER_MAX_DELIVERIES it goes to
the dead-letter stream, and the entries read with it are stored and acked, not lost.

The poison: the test holds an open transaction that inserted the row of one event, so the
consumer's INSERT ... ON CONFLICT DO NOTHING for that event waits for it, as long as the test
runs."""

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from notifications.events import MESSAGE_PUBLISHED as EVENT_TYPE
from notifications.models import NotificationMessage
from tests.helpers import wait_until
from workers.deadletter import dead_letter_stream
from workers.events import Event
from workers.publish import publish_many

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "NotificationStream"
GROUP = "demo_consumer_group"
WORKER_ENV = {
    "WORKER_MAX_DELIVERIES": "3",
    "WORKER_CLAIM_IDLE_MS": "1000",
    "WORKER_BLOCK_MS": "200",
    # A killed worker's session waiting on the held row would otherwise live on, holding the
    # rows it inserted before it; this makes PostgreSQL notice the closed socket and end it.
    "PGOPTIONS": "-c client_connection_check_interval=100",
}


def message(n: int) -> Event:
    timestamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return Event(type=EVENT_TYPE, payload={"id": n, "description": f"message {n}", "timestamp": timestamp})


def times_delivered(redis_client, entry_id: str) -> int:
    """XPENDING's count for one entry; 0 before the worker created its group."""
    if not any(g["name"] == GROUP for g in redis_client.xinfo_groups(STREAM)):
        return 0
    return next((p["times_delivered"] for p in redis_client.xpending_range(STREAM, GROUP, entry_id, entry_id, 1)), 0)


@pytest.mark.parametrize("restart", ["same consumer name", "new consumer name"])
def test_a_poison_entry_that_kills_its_worker_is_dead_lettered_and_nothing_else_is_lost(
    redis_client, worker_process, restart
):
    # given: five messages, the third of which hangs whoever handles it
    events = [message(n) for n in range(5)]
    poison = events[2]
    locker = psycopg.connect(**connection.get_connection_params())
    try:
        locker.execute(
            f"INSERT INTO {NotificationMessage._meta.db_table}"
            " (event_id, message_id, description, timestamp, stream_id, received_at)"
            " VALUES (%s, 2, 'held', now(), '', now())",
            [poison.id],
        )
        ids = publish_many(STREAM, events)
        poison_id = ids[2]
        # when: the worker is killed -9 while it handles the poison, three times
        for life in range(1, 4):
            name = "fixed" if restart == "same consumer name" else f"life-{life}"
            worker = worker_process("runworker", "notifications", "--consumer-name", name, env=WORKER_ENV)
            wait_until(lambda: times_delivered(redis_client, poison_id) == life, timeout=30)  # noqa: B023
            worker.kill()
        # and a fourth worker starts
        name = "fixed" if restart == "same consumer name" else "life-4"
        worker_process("runworker", "notifications", "--consumer-name", name, env=WORKER_ENV)
        # then: the poison is dead-lettered with its count, the others stored, nothing pending
        dead = wait_until(lambda: redis_client.xrange(dead_letter_stream(STREAM)), timeout=30, message="a dead letter")
        wait_until(lambda: NotificationMessage.objects.count() == 4, timeout=30)
        wait_until(lambda: redis_client.xpending(STREAM, GROUP)["pending"] == 0, timeout=10)
    finally:
        locker.close()  # rolls the held row back
    [(_, fields)] = dead
    assert (fields["id"], fields["dlq_entry_id"], fields["dlq_attempts"]) == (poison.id, poison_id, "4")
    assert fields["dlq_error"] == "delivered 4 times without success"
    assert sorted(NotificationMessage.objects.values_list("event_id", flat=True)) == sorted(
        uuid.UUID(e.id) for e in events if e is not poison
    )
