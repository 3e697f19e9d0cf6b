"""Event types: every consumer declares the types it takes, each one some producer emits,
and the runner skips (acks, counts, logs) entries of other types without calling it."""

import logging
import threading

import pytest

from tests.workers.handlers import created_groups
from workers.consumer import ConsumerLoop
from workers.deadletter import dead_letter_stream
from workers.events import Event, known_event_types
from workers.metrics import consumer_counters
from workers.publish import publish_many
from workers.registry import CONSUMERS, ConsumerSpec

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", sorted(CONSUMERS))
def test_every_consumer_takes_only_types_some_producer_emits(name):
    handler = CONSUMERS[name].load_handler()

    declared = getattr(handler, "event_types", None)

    assert declared, f"{CONSUMERS[name].handler} declares no event types (workers.handling.handles)"
    assert declared <= known_event_types(), f"no producer emits {sorted(declared - known_event_types())}"


def test_each_app_emits_only_types_named_after_it():
    # `<app>.<entity>.<past-tense>`, declared in that app's own events module
    from importlib import import_module
    from importlib.util import find_spec

    from django.apps import apps

    for app in apps.get_app_configs():
        if app.name == "workers" or find_spec(f"{app.name}.events") is None:
            continue
        for event_type in import_module(f"{app.name}.events").EVENT_TYPES:
            assert event_type.split(".")[0] == app.label and len(event_type.split(".")) == 3, event_type


def test_entries_of_other_types_are_acked_counted_and_logged_without_the_handler(redis_client, caplog):
    # given a consumer whose handler takes tests.group.requested only
    spec = ConsumerSpec(
        name="test-typed",
        stream="typed-stream",
        group="typed-group",
        handler="tests.workers.handlers.create_group_of_its_type",
        claim_idle_ms=60_000,
    )
    loop = ConsumerLoop(spec, stop=threading.Event(), consumer="c1", trims=False, block_ms=50)
    # and a stream with its type, a known type that is another consumer's, and a renamed one
    publish_many(
        "typed-stream",
        [
            Event(type="tests.group.requested", payload={"name": "mine"}),
            Event(type="orders.order.finalized", payload={"order_id": 1}),
            Event(type="orders.order.placed.v2", payload={"order_id": 2}),
            Event(type="orders.order.placed.v2", payload={"order_id": 3}),
        ],
    )

    # when the loop reads them
    with caplog.at_level(logging.INFO, logger="workers.consumer"):
        for _ in range(3):
            loop.run_once()

    # then only its own type reached the handler, every entry is acked, the rest counted
    assert created_groups() == ["mine"]
    assert redis_client.xpending("typed-stream", "typed-group")["pending"] == 0
    assert redis_client.xlen(dead_letter_stream("typed-stream")) == 0
    counters = consumer_counters("test-typed", stream="typed-stream")
    assert (counters["processed"], counters["skipped"]) == (1, 3)
    # and each skipped type is logged once: the unknown one as a warning
    skipped = [(r.levelname, r.getMessage()) for r in caplog.records if "skips" in r.getMessage()]
    assert [level for level, _ in skipped] == ["INFO", "WARNING"]
    assert "orders.order.finalized" in skipped[0][1] and "orders.order.placed.v2" in skipped[1][1]
