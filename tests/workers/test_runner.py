"""The consumer runner against a real Redis and database, with test handlers."""

import json
import threading
import uuid

import pytest

from tests.helpers import wait_until
from tests.workers.handlers import created_groups
from workers.consumer import ConsumerLoop
from workers.deadletter import dead_letter_stream
from workers.events import Event
from workers.metrics import consumer_counters
from workers.models import ProcessedEvent
from workers.publish import publish, publish_many
from workers.registry import ConsumerSpec

pytestmark = pytest.mark.django_db

STREAM = "test-stream"
GROUP = "test-group"


def make_loop(
    handler: str, *, batch: bool = False, inbox: bool = True, consumer: str = "c1", trims: bool = False, **kwargs
) -> ConsumerLoop:
    spec = ConsumerSpec(
        name=f"test-{handler.rsplit('.', 1)[-1]}",
        stream=STREAM,
        group=GROUP,
        handler=f"tests.workers.handlers.{handler}",
        batch=batch,
        inbox=inbox,
        max_deliveries=kwargs.pop("max_deliveries", 3),
        claim_idle_ms=kwargs.pop("claim_idle_ms", 100),
    )
    return ConsumerLoop(spec, stop=threading.Event(), consumer=consumer, trims=trims, block_ms=50, **kwargs)


def group_event(name: str, **extra) -> Event:
    return Event(type="tests.group.requested", payload={"name": name, **extra})


def drain(loop: ConsumerLoop, rounds: int = 5) -> None:
    for _ in range(rounds):
        loop.run_once()


def pending(redis_client) -> int:
    return redis_client.xpending(STREAM, GROUP)["pending"]


def test_handled_events_are_acked_and_counted(settings, redis_client):
    # given
    settings.WORKER_RETRY_BASE_S = 0.01
    loop = make_loop("create_group")
    publish_many(STREAM, [group_event("a"), group_event("b")])
    # when
    drain(loop)
    # then
    assert created_groups() == ["a", "b"]
    assert pending(redis_client) == 0
    assert redis_client.xlen(dead_letter_stream(STREAM)) == 0
    assert consumer_counters(loop.spec.name, stream=STREAM)["processed"] == 2


def test_a_handler_failing_once_is_retried_and_succeeds(settings, redis_client):
    settings.WORKER_RETRY_BASE_S = 0.01
    loop = make_loop("fail_first_time")
    event = group_event("retried")
    publish(STREAM, event)

    drain(loop)

    assert created_groups() == ["retried"]
    assert redis_client.get(f"calls:{event.id}") == "2"
    assert redis_client.xlen(dead_letter_stream(STREAM)) == 0
    assert pending(redis_client) == 0
    counters = consumer_counters(loop.spec.name, stream=STREAM)
    assert (counters["processed"], counters["retried"], counters["dead_lettered"]) == (1, 1, 0)


def test_a_handler_that_keeps_failing_ends_in_the_dead_letter_stream(settings, redis_client):
    settings.WORKER_RETRY_BASE_S = 0.01
    loop = make_loop("always_fail", max_deliveries=3)
    event = group_event("doomed")
    publish(STREAM, event)

    drain(loop)

    [(_, dead)] = redis_client.xrange(dead_letter_stream(STREAM))
    assert dead["id"] == event.id
    assert dead["dlq_error"] == "RuntimeError: simulated bug"
    assert dead["dlq_attempts"] == "3"
    assert dead["dlq_group"] == GROUP
    assert redis_client.get(f"calls:{event.id}") == "3"
    assert pending(redis_client) == 0  # acked: it will not be redelivered
    assert consumer_counters(loop.spec.name, stream=STREAM)["dead_lettered"] == 1


def test_a_permanent_error_is_dead_lettered_without_retrying(redis_client):
    loop = make_loop("reject")
    event = group_event("bad")
    publish(STREAM, event)

    drain(loop)

    [(_, dead)] = redis_client.xrange(dead_letter_stream(STREAM))
    assert (dead["dlq_error"], dead["dlq_attempts"]) == ("PermanentError: simulated bad data", "1")
    assert redis_client.get(f"calls:{event.id}") == "1"


def test_an_entry_that_is_not_an_event_is_dead_lettered(redis_client):
    loop = make_loop("create_group")
    redis_client.xadd(STREAM, {"hello": "world"})
    publish(STREAM, group_event("fine"))

    drain(loop)

    [(_, dead)] = redis_client.xrange(dead_letter_stream(STREAM))
    assert dead["hello"] == "world"
    assert dead["dlq_error"].startswith("MalformedEvent")
    assert created_groups() == ["fine"]
    assert pending(redis_client) == 0


def test_one_bad_event_in_a_batch_does_not_sink_the_others(redis_client):
    loop = make_loop("create_groups", batch=True)
    publish_many(STREAM, [group_event("one"), group_event("two", poison=True), group_event("three")])

    drain(loop)

    assert created_groups() == ["one", "three"]
    [(_, dead)] = redis_client.xrange(dead_letter_stream(STREAM))
    assert dead["dlq_error"] == "PermanentError: poison event two"
    assert pending(redis_client) == 0


def test_events_a_handler_returns_are_sent_with_the_ack(redis_client):
    # given: three requests for a handler that answers each one
    loop = make_loop("answer", batch=True, inbox=False)
    requests = [group_event(name) for name in ("x", "y", "z")]
    publish_many(STREAM, requests)

    # when
    drain(loop)

    # then: one reply per request, in order, on the stream the handler named; all acked
    replies = redis_client.xrange("test-replies")
    assert [json.loads(fields["payload"]) for _, fields in replies] == [{"to": r.id} for r in requests]
    assert {fields["type"] for _, fields in replies} == {"tests.answer.produced"}
    assert pending(redis_client) == 0
    assert consumer_counters(loop.spec.name, stream=STREAM)["processed"] == 3


def test_a_redelivered_event_is_applied_once(redis_client):
    # given: the same event published twice (an outbox resend after a crash)
    loop = make_loop("create_group")
    event = group_event("once")
    publish_many(STREAM, [event, event])
    # when
    drain(loop)
    # then: the handler ran once; the second copy was recognised in the inbox and acked
    assert created_groups() == ["once"]
    assert redis_client.get(f"calls:{event.id}") == "1"
    assert ProcessedEvent.objects.filter(group=GROUP, event_id=uuid.UUID(event.id)).count() == 1
    assert consumer_counters(loop.spec.name, stream=STREAM)["duplicates"] == 1
    assert pending(redis_client) == 0


def test_entries_left_pending_by_a_dead_consumer_are_reclaimed(redis_client):
    # given: a consumer that read two entries and died without acking them
    publish_many(STREAM, [group_event("x"), group_event("y")])
    loop = make_loop("create_group", consumer="survivor", claim_idle_ms=100)
    loop._ensure_group(redis_client)
    redis_client.xreadgroup(GROUP, "dead", {STREAM: ">"}, count=10)
    assert redis_client.xpending(STREAM, GROUP)["consumers"] == [{"name": "dead", "pending": 2}]
    # when: they have been idle past the threshold
    wait_until(
        lambda: all(p["time_since_delivered"] >= 100 for p in redis_client.xpending_range(STREAM, GROUP, "-", "+", 10))
    )
    drain(loop)
    # then
    assert created_groups() == ["x", "y"]
    assert pending(redis_client) == 0
    assert consumer_counters(loop.spec.name, stream=STREAM)["reclaimed"] == 2


def test_a_consumer_restarted_under_its_name_counts_its_pending_entries_for_real(redis_of_each_version):
    client = redis_of_each_version
    # given: an entry that consumer c1 has been delivered three times (its process died each time)
    [entry_id] = publish_many(STREAM, [group_event("poison")])
    loop = make_loop("create_group", consumer="c1", max_deliveries=3)
    loop._ensure_group(client)
    client.xreadgroup(GROUP, "c1", {STREAM: ">"}, count=10)
    client.xreadgroup(GROUP, "c1", {STREAM: "0"}, count=10)
    client.xreadgroup(GROUP, "c1", {STREAM: "0"}, count=10)
    # when: c1 starts again
    drain(loop, rounds=1)
    # then: the fourth delivery goes to the dead-letter stream; the handler never ran
    [(_, dead)] = client.xrange(dead_letter_stream(STREAM))
    assert (dead["dlq_entry_id"], dead["dlq_attempts"]) == (entry_id, "4")
    assert not created_groups()
    assert client.xpending(STREAM, GROUP)["pending"] == 0


def test_the_trimming_loop_removes_consumers_of_dead_workers(settings, redis_client):
    # given: a consumer of a worker that is gone, idle ten claim intervals with nothing pending
    settings.WORKER_TRIM_INTERVAL_S = 0
    loop = make_loop("create_group", consumer="alive", trims=True, claim_every_s=0.05)
    loop._ensure_group(redis_client)
    [entry_id] = publish_many(STREAM, [group_event("old")])
    redis_client.xreadgroup(GROUP, "dead-pid-1", {STREAM: ">"}, count=10)
    redis_client.xack(STREAM, GROUP, entry_id)
    wait_until(lambda: redis_client.xinfo_consumers(STREAM, GROUP)[0]["idle"] > 500)
    # when
    loop.run_once()
    # then: only the live consumer is left
    assert [c["name"] for c in redis_client.xinfo_consumers(STREAM, GROUP)] == ["alive"]


def test_a_lost_group_is_recreated_and_nothing_published_meanwhile_is_missed(redis_client):
    loop = make_loop("create_group")
    publish(STREAM, group_event("before"))
    drain(loop, rounds=2)
    # when: Redis loses the group (e.g. restarted without persistence) and an event arrives
    redis_client.xgroup_destroy(STREAM, GROUP)
    publish(STREAM, group_event("after"))
    drain(loop, rounds=3)
    # then: the recreated group starts at 0; "before" is recognised by the inbox
    assert created_groups() == ["after", "before"]
    assert pending(redis_client) == 0


def test_shutdown_during_a_retry_leaves_the_entry_pending_for_another_consumer(settings, redis_client):
    settings.WORKER_RETRY_BASE_S = 5  # a long backoff, cut short by the stop flag
    loop = make_loop("always_fail", max_deliveries=5)
    publish(STREAM, group_event("interrupted"))
    loop.stop.set()

    loop.run_once()

    assert pending(redis_client) == 1
    assert redis_client.xlen(dead_letter_stream(STREAM)) == 0


def test_a_pending_entry_trimmed_away_is_acked_not_fatal(redis_of_each_version):
    client = redis_of_each_version
    # given: a dead consumer's pending entry that was then trimmed from the stream
    loop = make_loop("create_group", consumer="survivor", claim_idle_ms=100)
    [gone_id, kept_id] = publish_many(STREAM, [group_event("gone"), group_event("kept")])
    loop._ensure_group(client)
    client.xreadgroup(GROUP, "dead", {STREAM: ">"}, count=10)
    client.xdel(STREAM, gone_id)
    wait_until(
        lambda: all(p["time_since_delivered"] >= 100 for p in client.xpending_range(STREAM, GROUP, "-", "+", 10))
    )
    # when
    drain(loop)
    # then: the surviving entry is handled and nothing stays pending
    assert created_groups() == ["kept"]
    assert client.xpending(STREAM, GROUP)["pending"] == 0
