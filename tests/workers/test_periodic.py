"""Periodic registry entries (the relay, the email re-queue, the reconciler) under the runner."""

import threading

import pytest
from django.core.management import call_command
from django.db import transaction

from tests.helpers import wait_until
from workers.events import Event
from workers.models import OutboxEvent
from workers.periodic import PeriodicLoop
from workers.publish import publish_on_commit
from workers.registry import PERIODIC, PeriodicSpec
from workers.runner import Runner

STREAM = "periodic-test"


def unsent_events(own_redis_server, n: int) -> list[Event]:
    """Events whose post-commit send failed: Redis was down at commit time."""
    own_redis_server.stop()
    events = [Event(type="tests.thing.happened", payload={"n": i}) for i in range(n)]
    with transaction.atomic():
        publish_on_commit(STREAM, events)
    own_redis_server.start()
    return events


@pytest.mark.django_db(transaction=True)
def test_relay_outbox_once_sends_what_redis_could_not_take(own_redis_server, settings, capsys):
    # given two events left in the outbox, older than the grace period
    settings.OUTBOX_RELAY_GRACE_S = 0
    events = unsent_events(own_redis_server, 2)

    # when the relay command runs one pass
    call_command("relay_outbox", "--once")

    # then both are on the stream, in order, the outbox is empty, and it says so
    client = own_redis_server.client()
    assert [f["id"] for _, f in client.xrange(STREAM)] == [e.id for e in events]
    assert OutboxEvent.objects.count() == 0
    assert capsys.readouterr().out == "relay_outbox: sent 2 event(s)\n"


@pytest.mark.django_db(transaction=True)
def test_the_runner_runs_the_relay_entry_until_stopped(own_redis_server, settings):
    # given an event in the outbox and the relay's registry entry in a runner
    settings.OUTBOX_RELAY_GRACE_S = 0
    events = unsent_events(own_redis_server, 1)
    runner = Runner([PERIODIC["relay"]])
    thread = threading.Thread(target=runner.run)

    # when it runs
    thread.start()
    try:
        wait_until(lambda: not OutboxEvent.objects.exists())
    finally:
        runner.stop.set()
        thread.join(timeout=10)

    # then the event was sent once and the runner stopped
    assert [f["id"] for _, f in own_redis_server.client().xrange(STREAM)] == [events[0].id]
    assert not thread.is_alive()


calls: list[str] = []


def busy_twice() -> int:
    calls.append("tick")
    return 1 if len(calls) <= 2 else 0


def test_a_busy_tick_is_repeated_at_once_until_it_has_nothing_left():
    # given a tick that does work twice, then nothing
    calls.clear()
    spec = PeriodicSpec(name="t", tick=f"{__name__}.busy_twice", interval=3600, again_while_busy=True)

    # when one round runs
    result = PeriodicLoop(spec, stop=threading.Event()).run_once()

    # then it ticked until idle, without waiting an interval
    assert (calls, result) == (["tick", "tick", "tick"], 0)


def test_without_again_while_busy_a_round_is_one_tick():
    calls.clear()
    spec = PeriodicSpec(name="t", tick=f"{__name__}.busy_twice", interval=3600)

    assert PeriodicLoop(spec, stop=threading.Event()).run_once() == 1
    assert calls == ["tick"]
