"""Dead letters an operator acts on (workers.deadletters) against a real Redis and database:
list and show, redrive (one, a selection, a filter) consumed by a real ConsumerLoop,
concurrent redrives, purge, a redriven entry failing again, and the audit log."""

import threading
import time
import uuid

import pytest
from django.db import connection

from tests.workers.handlers import created_groups
from workers.consumer import ConsumerLoop
from workers.deadletter import dead_letter_stream, stream_dead_letter
from workers.deadletters import (
    DeadLetterFilter,
    DeadLetterSelectionInvalid,
    DeadLetterStreamUnknown,
    dead_letter_get,
    dead_letter_list,
    dead_letters_purge,
    dead_letters_redrive,
)
from workers.events import Event
from workers.models import OperatorAction, ProcessedEvent
from workers.publish import publish
from workers.registry import ConsumerSpec

STREAM = "test-dlq-stream"
GROUP = "test-group"
DLQ = dead_letter_stream(STREAM)


@pytest.fixture(autouse=True)
def _known_stream(settings):
    settings.STREAMS = {**settings.STREAMS, "test-dlq": STREAM}
    settings.WORKER_RETRY_BASE_S = 0.01


def make_loop(handler: str, *, max_deliveries: int = 2) -> ConsumerLoop:
    spec = ConsumerSpec(
        name=f"test-{handler}",
        stream=STREAM,
        group=GROUP,
        handler=f"tests.workers.handlers.{handler}",
        max_deliveries=max_deliveries,
        claim_idle_ms=100,
    )
    return ConsumerLoop(spec, stop=threading.Event(), consumer="c1", trims=False, block_ms=50)


def drain(loop: ConsumerLoop, rounds: int = 3) -> None:
    for _ in range(rounds):
        loop.run_once()


def group_event(name: str) -> Event:
    return Event(type="tests.group.requested", payload={"name": name})


def dead_lettered_by_a_consumer(*names: str, handler: str = "reject") -> list[str]:
    """Publish one event per name, let a real consumer dead-letter them; their DLQ ids."""
    events = [group_event(name) for name in names]
    for event in events:
        publish(STREAM, event)
    drain(make_loop(handler))
    from workers.connection import get_redis

    return [entry_id for entry_id, _ in get_redis().xrange(DLQ)]


def old_dead_letter(redis_client, name: str, *, age_s: int, consumer: str, error: str) -> str:
    """A dead letter written `age_s` ago (the id and dlq_at say when), as the consumer writes it."""
    at_ms = int(time.time() * 1000) - age_s * 1000
    fields = stream_dead_letter(
        group_event(name).to_fields(),
        error=error,
        attempts=5,
        stream=STREAM,
        group=GROUP,
        entry_id=f"{at_ms - 10}-0",
        consumer=consumer,
    )
    fields["dlq_at"] = str(at_ms)
    return redis_client.xadd(DLQ, fields, id=f"{at_ms}-*")


@pytest.mark.django_db
def test_a_dead_letter_shows_where_it_came_from_what_it_carried_and_why(redis_client):
    # given an event a consumer gave up on
    event = group_event("bad")
    original_id = publish(STREAM, event)
    drain(make_loop("reject"))
    [(dlq_id, _)] = redis_client.xrange(DLQ)
    # when
    letter = dead_letter_get(stream=STREAM, entry_id=dlq_id)
    # then
    assert letter is not None
    assert (letter.id, letter.stream, letter.original_entry_id) == (dlq_id, STREAM, original_id)
    assert (letter.event_id, letter.event_type, letter.payload) == (event.id, "tests.group.requested", {"name": "bad"})
    assert (letter.error, letter.attempts, letter.consumer, letter.group) == (
        "PermanentError: simulated bad data",
        1,
        "test-reject",
        GROUP,
    )
    assert letter.redrive_count == 0
    assert abs(letter.dead_lettered_at.timestamp() - int(dlq_id.split("-")[0]) / 1000) < 1
    assert dead_letter_list(stream=STREAM) == [letter]
    assert dead_letter_get(stream=STREAM, entry_id="1-0") is None
    assert dead_letter_get(stream=STREAM, entry_id="not-an-id") is None


@pytest.mark.django_db
def test_the_list_is_newest_first_and_filters_by_consumer_error_text_and_age(redis_client):
    a = old_dead_letter(redis_client, "a", age_s=7200, consumer="router", error="SMTPError: 451 try later")
    b = old_dead_letter(redis_client, "b", age_s=600, consumer="sender", error="SMTPError: 550 no such user")
    c = old_dead_letter(redis_client, "c", age_s=10, consumer="sender", error="KeyError: 'name'")

    def ids(**criteria) -> list[str]:
        return [letter.id for letter in dead_letter_list(stream=STREAM, wanted=DeadLetterFilter(**criteria))]

    assert ids() == [c, b, a]
    assert ids(consumer="sender") == [c, b]
    assert ids(error_contains="smtperror") == [b, a]
    assert ids(older_than_s=300) == [b, a]
    assert ids(older_than_s=3600) == [a]
    assert ids(consumer="sender", error_contains="550", older_than_s=60) == [b]
    assert ids(max_id=b) == [b, a]
    assert ids(consumer="nobody") == []


@pytest.mark.django_db
def test_redriving_one_entry_puts_its_fields_back_and_a_real_consumer_applies_it(redis_client):
    # given a dead letter and its event's original fields
    event = group_event("second-chance")
    publish(STREAM, event)
    drain(make_loop("reject"))
    [(dlq_id, _)] = redis_client.xrange(DLQ)
    # when it is redriven
    result = dead_letters_redrive(stream=STREAM, ids=[dlq_id], actor="alice")
    # then it left the DLQ and is on the stream as it was, with its redrive count and time
    assert (result.requested, result.done) == (1, [dlq_id])
    assert redis_client.xlen(DLQ) == 0
    assert redis_client.xlen(STREAM) == 2  # the original (acked) and the redriven entry
    _, redriven = redis_client.xrevrange(STREAM, count=1)[0]
    assert {k: v for k, v in redriven.items() if k != "redriven_at"} == {**event.to_fields(), "redrive_count": "1"}
    assert abs(int(redriven["redriven_at"]) - time.time() * 1000) < 60_000
    # and a consumer that now succeeds applies it, once
    drain(make_loop("create_group"))
    assert created_groups() == ["second-chance"]
    assert redis_client.get(f"calls:{event.id}") == "2"  # the rejection, then the success
    assert redis_client.xpending(STREAM, GROUP)["pending"] == 0


@pytest.mark.django_db
def test_redriving_a_selection_moves_only_those(redis_client):
    ids = dead_lettered_by_a_consumer("one", "two", "three")

    result = dead_letters_redrive(stream=STREAM, ids=[ids[0], ids[2]], actor="alice")

    assert result.done == [ids[0], ids[2]]
    assert [entry_id for entry_id, _ in redis_client.xrange(DLQ)] == [ids[1]]
    drain(make_loop("create_group"))
    assert created_groups() == ["one", "three"]


@pytest.mark.django_db
def test_redriving_by_filter_moves_every_match_and_nothing_else(redis_client):
    old_dead_letter(redis_client, "a", age_s=7200, consumer="router", error="SMTPError: 451")
    old_dead_letter(redis_client, "b", age_s=600, consumer="sender", error="SMTPError: 451")
    kept = old_dead_letter(redis_client, "c", age_s=10, consumer="sender", error="SMTPError: 451")

    result = dead_letters_redrive(
        stream=STREAM, wanted=DeadLetterFilter(error_contains="451", older_than_s=60), actor="alice"
    )

    assert (result.requested, len(result.done)) == (2, 2)
    assert [entry_id for entry_id, _ in redis_client.xrange(DLQ)] == [kept]
    assert sorted(f["payload"] for _, f in redis_client.xrange(STREAM)) == ['{"name":"a"}', '{"name":"b"}']


@pytest.mark.django_db(transaction=True)
def test_two_operators_redriving_the_same_entries_at_once_move_each_exactly_once(redis_client):
    # given five dead letters
    names = [f"race-{n}" for n in range(5)]
    ids = dead_lettered_by_a_consumer(*names)
    stream_length = redis_client.xlen(STREAM)
    # when two threads redrive all five at the same moment
    barrier = threading.Barrier(2)
    results = {}

    def operator(who: str) -> None:
        barrier.wait()
        try:
            results[who] = dead_letters_redrive(stream=STREAM, ids=ids, actor=who)
        finally:
            connection.close()  # this thread's own database connection

    threads = [threading.Thread(target=operator, args=(who,)) for who in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then each entry was moved once: one XADD each, nothing left in the DLQ
    moved = results["alice"].done + results["bob"].done
    assert sorted(moved) == sorted(ids)
    assert redis_client.xlen(STREAM) == stream_length + 5
    assert redis_client.xlen(DLQ) == 0
    assert sorted((r.actor, r.requested) for r in OperatorAction.objects.all()) == [("alice", 5), ("bob", 5)]
    assert sum(OperatorAction.objects.values_list("affected", flat=True)) == 5
    # and a real consumer with an inbox applies each event once
    drain(make_loop("create_group"))
    assert created_groups() == sorted(names)
    assert ProcessedEvent.objects.filter(group=GROUP).count() == 5
    # and redriving them again finds nothing to move
    assert dead_letters_redrive(stream=STREAM, ids=ids, actor="alice").done == []
    assert redis_client.xlen(STREAM) == stream_length + 5


@pytest.mark.django_db
def test_a_redriven_entry_that_fails_again_is_dead_lettered_with_its_redrive_count(redis_client):
    event = group_event("hopeless")
    publish(STREAM, event)
    drain(make_loop("reject"))
    [(first, _)] = redis_client.xrange(DLQ)

    dead_letters_redrive(stream=STREAM, ids=[first], actor="alice")
    drain(make_loop("always_fail", max_deliveries=2))

    [letter] = dead_letter_list(stream=STREAM)
    assert letter.id != first
    assert (letter.event_id, letter.redrive_count, letter.error) == (event.id, 1, "RuntimeError: simulated bug")
    assert letter.fields["redrive_count"] == "1"
    # redriven again, it counts 2
    dead_letters_redrive(stream=STREAM, ids=[letter.id], actor="alice")
    _, fields = redis_client.xrevrange(STREAM, count=1)[0]
    assert fields["redrive_count"] == "2"


@pytest.mark.django_db
def test_purge_deletes_one_a_selection_or_every_match(redis_client):
    a = old_dead_letter(redis_client, "a", age_s=7200, consumer="router", error="boom")
    b = old_dead_letter(redis_client, "b", age_s=600, consumer="sender", error="boom")
    c = old_dead_letter(redis_client, "c", age_s=300, consumer="sender", error="boom")
    d = old_dead_letter(redis_client, "d", age_s=10, consumer="sender", error="boom")

    assert dead_letters_purge(stream=STREAM, ids=[a], actor="alice").done == [a]
    assert dead_letters_purge(stream=STREAM, ids=[b, a], actor="alice").done == [b]  # a was gone already
    assert dead_letters_purge(stream=STREAM, wanted=DeadLetterFilter(consumer="sender"), actor="alice").done == [d, c]

    assert redis_client.xlen(DLQ) == 0
    assert redis_client.exists(STREAM) == 0  # nothing was redriven


@pytest.mark.django_db
def test_every_action_is_recorded_with_who_what_how_many_and_which(redis_client):
    ids = dead_lettered_by_a_consumer("x", "y", "z")

    dead_letters_redrive(stream=STREAM, ids=[ids[0]], actor="alice")
    dead_letters_purge(stream=STREAM, wanted=DeadLetterFilter(consumer="test-reject"), actor="cli:root")
    dead_letters_redrive(stream=STREAM, ids=[ids[0]], actor="bob")  # already gone

    rows = list(
        OperatorAction.objects.order_by("id").values_list(
            "actor", "stream", "action", "selection", "requested", "affected"
        )
    )
    assert rows == [
        ("alice", STREAM, "redrive", {"ids": [ids[0]]}, 1, 1),
        ("cli:root", STREAM, "purge", {"filter": {"consumer": "test-reject"}}, 2, 2),
        ("bob", STREAM, "redrive", {"ids": [ids[0]]}, 1, 0),
    ]


@pytest.mark.django_db
def test_a_bad_selection_or_an_unknown_stream_changes_nothing(redis_client):
    [dlq_id] = dead_lettered_by_a_consumer("kept")
    length = redis_client.xlen(STREAM)
    bad_calls = [
        ({"stream": STREAM}, DeadLetterSelectionInvalid),  # neither ids nor a filter
        ({"stream": STREAM, "ids": [dlq_id], "wanted": DeadLetterFilter()}, DeadLetterSelectionInvalid),
        ({"stream": STREAM, "ids": []}, DeadLetterSelectionInvalid),
        ({"stream": STREAM, "ids": [dlq_id, "0-0; DEL x"]}, DeadLetterSelectionInvalid),
        ({"stream": "not-a-stream", "ids": [dlq_id]}, DeadLetterStreamUnknown),
    ]
    for kwargs, error in bad_calls:
        for service in (dead_letters_redrive, dead_letters_purge):
            with pytest.raises(error):
                service(actor="alice", **kwargs)
    with pytest.raises(DeadLetterSelectionInvalid):
        DeadLetterFilter(older_than_s=-1)

    assert [entry_id for entry_id, _ in redis_client.xrange(DLQ)] == [dlq_id]
    assert redis_client.xlen(STREAM) == length
    assert OperatorAction.objects.count() == 0
    assert uuid.UUID(dead_letter_list(stream=STREAM)[0].event_id)
