"""The transactional outbox: events leave after commit, never for a rollback, and the
relay sends what Redis could not take at commit time."""

import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import DataError, connection, transaction

from tests.helpers import wait_until
from workers.events import Event
from workers.models import OutboxEvent
from workers.publish import StreamUnavailable, publish, publish_on_commit, relay_pending, sent_rows

STREAM = "outbox-test"


def an_event(n: int = 1) -> Event:
    return Event(type="tests.thing.happened", payload={"n": n})


@pytest.mark.django_db(transaction=True)
def test_events_are_sent_right_after_commit(redis_client):
    event = an_event()
    with transaction.atomic():
        publish_on_commit(STREAM, event)
        assert redis_client.xlen(STREAM) == 0  # not before the commit

    [(_, fields)] = redis_client.xrange(STREAM)
    assert fields["id"] == event.id
    assert fields["payload"] == '{"n":1}'
    wait_until(lambda: not OutboxEvent.objects.exists())  # deleted by the sent-rows thread


@pytest.mark.django_db(transaction=True)
def test_rows_sent_but_not_yet_deleted_are_only_resent_with_the_same_event_ids(redis_client, settings):
    # given: the sent-rows thread gathers for 30 s, so the rows of sent events are still there,
    # as when a process dies between its XADD and the background delete
    sent_rows.close()
    settings.OUTBOX_DELETE_INTERVAL_S = 30
    events = [an_event(n) for n in range(3)]
    for event in events:
        with transaction.atomic():
            publish_on_commit(STREAM, event)
    assert OutboxEvent.objects.count() == 3
    # when: the relay finds them
    assert relay_pending(grace_s=0) == 3
    # then: each event is on the stream twice under its own id (consumers keep one), and the
    # relay deleted the rows; the thread's own delete later finds nothing to do
    assert [f["id"] for _, f in redis_client.xrange(STREAM)] == [e.id for e in events] * 2
    assert OutboxEvent.objects.count() == 0
    sent_rows.close()
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_closing_deletes_the_rows_waiting_for_the_thread(redis_client, settings):
    sent_rows.close()
    settings.OUTBOX_DELETE_INTERVAL_S = 30
    for n in range(3):
        with transaction.atomic():
            publish_on_commit(STREAM, an_event(n))
    assert OutboxEvent.objects.count() == 3 and redis_client.xlen(STREAM) == 3

    sent_rows.close()  # what a process does at exit

    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_emits_nothing(redis_client):
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 (the failure must follow the publish inside one transaction)
        publish_on_commit(STREAM, an_event())
        raise RuntimeError("the service failed after publishing")

    assert redis_client.exists(STREAM) == 0
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_events_redis_could_not_take_are_sent_by_the_relay(own_redis_server):
    # given: Redis is down when the transaction commits
    own_redis_server.stop()
    events = [an_event(1), an_event(2)]
    with transaction.atomic():
        publish_on_commit(STREAM, events)
    assert list(OutboxEvent.objects.values_list("attempts", flat=True)) == [1, 1]
    # when: Redis is back and the relay runs
    own_redis_server.start()
    sent = relay_pending(grace_s=0)
    # then: both sent, in order, and the outbox is empty
    assert sent == 2
    client = own_redis_server.client()
    assert [f["id"] for _, f in client.xrange(STREAM)] == [e.id for e in events]
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_relay_leaves_fresh_rows_to_their_own_sender(redis_client):
    with transaction.atomic():
        OutboxEvent.objects.create(stream=STREAM, event_id=an_event().id, fields=an_event().to_fields())

    assert relay_pending(grace_s=60) == 0
    assert redis_client.exists(STREAM) == 0


def test_publishing_while_redis_is_down_raises_stream_unavailable(own_redis_server):
    own_redis_server.stop()
    with pytest.raises(StreamUnavailable):
        publish(STREAM, an_event())


# On PostgreSQL the outbox INSERT is deferred (commsplatform.db.postgresql): it runs before
# the transaction's next statement, or in the COMMIT's round trip. These pin down that it
# still behaves as an INSERT made at the call.


@pytest.mark.django_db(transaction=True)
def test_the_transaction_sees_its_outbox_rows_at_its_next_statement(redis_client):
    events = [an_event(1), an_event(2)]
    with transaction.atomic():
        publish_on_commit(STREAM, events)
        assert list(OutboxEvent.objects.values_list("event_id", flat=True)) == [uuid.UUID(e.id) for e in events]
        assert redis_client.exists(STREAM) == 0

    assert [f["id"] for _, f in redis_client.xrange(STREAM)] == [e.id for e in events]
    wait_until(lambda: not OutboxEvent.objects.exists())


@pytest.mark.django_db(transaction=True)
def test_events_of_several_calls_leave_in_call_order_when_the_inserts_share_the_commit(redis_client):
    events = [an_event(n) for n in range(4)]
    with transaction.atomic():
        Group.objects.create(name="before")
        publish_on_commit(STREAM, events[0])
        publish_on_commit("outbox-test-other", events[1])
        publish_on_commit(STREAM, events[2:])

    assert [f["id"] for _, f in redis_client.xrange(STREAM)] == [events[0].id, events[2].id, events[3].id]
    assert [f["id"] for _, f in redis_client.xrange("outbox-test-other")] == [events[1].id]
    assert Group.objects.filter(name="before").exists()
    wait_until(lambda: not OutboxEvent.objects.exists())


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_takes_its_event_back(redis_client):
    kept, dropped = an_event(1), an_event(2)
    with transaction.atomic():
        publish_on_commit(STREAM, kept)
        with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 (the failure must follow the publish inside the savepoint)
            publish_on_commit(STREAM, dropped)
            raise RuntimeError("the inner step failed after publishing")
        assert list(OutboxEvent.objects.values_list("event_id", flat=True)) == [uuid.UUID(kept.id)]

    assert [f["id"] for _, f in redis_client.xrange(STREAM)] == [kept.id]
    wait_until(lambda: not OutboxEvent.objects.exists())


@pytest.mark.django_db(transaction=True)
def test_an_outbox_insert_failing_at_commit_commits_nothing_and_sends_nothing(redis_client):
    # given a stream name the outbox column cannot hold (varchar(200)): its INSERT fails
    too_long = "s" * 201
    with pytest.raises(DataError), transaction.atomic():  # noqa: PT012 (the write and the publish share the transaction)
        Group.objects.create(name="written with the event")
        publish_on_commit(too_long, an_event())

    assert not Group.objects.filter(name="written with the event").exists()
    assert OutboxEvent.objects.count() == 0
    assert redis_client.exists(too_long) == 0
    # and the connection goes on working
    with transaction.atomic():
        publish_on_commit(STREAM, an_event(3))
    assert redis_client.xlen(STREAM) == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_redis_refuses_after_commit_stays_in_the_outbox_for_the_relay(redis_client):
    # given a key that is not a stream: Redis answers its XADD with WRONGTYPE
    redis_client.set("outbox-test-not-a-stream", "a string")
    refused, taken = an_event(1), an_event(2)
    # when one event goes to it, and one to a stream, each after its own commit
    with transaction.atomic():
        publish_on_commit("outbox-test-not-a-stream", refused)
    with transaction.atomic():
        publish_on_commit(STREAM, taken)
    # then only the taken event's row is deleted; the refused one waits for the relay
    wait_until(lambda: list(OutboxEvent.objects.values_list("event_id", flat=True)) == [uuid.UUID(refused.id)])
    assert [f["id"] for _, f in redis_client.xrange(STREAM)] == [taken.id]
    assert redis_client.get("outbox-test-not-a-stream") == "a string"
    redis_client.delete("outbox-test-not-a-stream")


@pytest.mark.django_db(transaction=True)
def test_an_event_written_to_a_connection_redis_dropped_still_arrives_without_the_relay(own_redis_server):
    # given a process that has published through its Redis connection
    with transaction.atomic():
        publish_on_commit(STREAM, an_event(1))
    wait_until(lambda: not OutboxEvent.objects.exists())
    # when Redis restarts (empty, on the same port), dropping that connection, and the next event follows
    own_redis_server.stop()
    own_redis_server.start()
    event = an_event(2)
    with transaction.atomic():
        publish_on_commit(STREAM, event)
    # then it reaches the new Redis once, and its row is deleted, long before the relay's grace
    client = own_redis_server.client()
    wait_until(lambda: not OutboxEvent.objects.exists(), timeout=3)
    assert [f["id"] for _, f in client.xrange(STREAM)] == [event.id]


@pytest.mark.django_db(transaction=True)
def test_a_publish_inside_an_execute_wrapper_block_leaves_the_wrappers_as_they_were(redis_client):
    # given an execute wrapper (Django's context manager pops the last one as it exits)
    seen: list[str] = []

    def record(execute, sql, params, many, context):
        seen.append(sql.split()[0])
        return execute(sql, params, many, context)

    event = an_event()
    with transaction.atomic():
        with connection.execute_wrapper(record):
            publish_on_commit(STREAM, event)
        assert record not in connection.execute_wrappers  # the block took its own wrapper away
        Group.objects.create(name="after the block")  # the deferred INSERT goes first
    # then the wrapper saw nothing after its block, the event left, and no wrapper is left over
    assert seen == []
    assert connection.execute_wrappers == []
    assert [f["id"] for _, f in redis_client.xrange(STREAM)] == [event.id]
