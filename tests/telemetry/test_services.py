"""The idempotent upsert of readings, against the session Redis."""

import json

from telemetry.services import battery_change_event_id, readings_apply
from workers.events import Event

from .factories import expected_outcome, noisy_readings, reading


def drain(pubsub) -> list[tuple[str, str]]:
    messages = []
    while (message := pubsub.get_message(timeout=0.2)) is not None:
        if message["type"] == "pmessage":
            messages.append((message["channel"], message["data"]))
    return messages


def subscribe(redis_client):
    pubsub = redis_client.pubsub()
    pubsub.psubscribe("battery:*:data")
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    return pubsub


def test_a_new_reading_is_stored_published_and_streamed(redis_client):
    # given
    pubsub = subscribe(redis_client)
    new = reading(battery_id=42, timestamp=1_700_000_100, voltage=410)
    # when
    changed = readings_apply(readings=[new])
    # then: the seed's contract
    assert changed == [True]
    assert redis_client.hgetall("battery:42:data") == {
        "timestamp": "1700000100",
        "voltage": "410",
        "current": "50",
        "temperature": "25",
        "state_of_charge": "80",
        "state_of_health": "95",
    }
    assert redis_client.smembers("info:batteries:ids") == {"42"}
    assert drain(pubsub) == [("battery:42:data", "updates")]
    # and the durable copy, a standard envelope
    [(_, fields)] = redis_client.xrange("battery-changes")
    event = Event.from_fields(fields)
    assert event.id == battery_change_event_id(new)
    assert event.type == "telemetry.battery.updated"
    assert event.version == 1
    assert event.payload == new.as_dict()
    assert json.loads(fields["payload"]) == new.as_dict()


def test_an_equal_or_older_reading_changes_and_notifies_nothing(redis_client):
    # given
    stored = reading(battery_id=1, timestamp=2000, voltage=400)
    readings_apply(readings=[stored])
    pubsub = subscribe(redis_client)
    # when: a replay of the same reading, and an older one with other values
    changed = readings_apply(readings=[stored, reading(battery_id=1, timestamp=1999, voltage=500)])
    # then
    assert changed == [False, False]
    assert redis_client.hget("battery:1:data", "voltage") == "400"
    assert redis_client.hget("battery:1:data", "timestamp") == "2000"
    assert redis_client.xlen("battery-changes") == 1
    assert drain(pubsub) == []


def test_readings_of_one_battery_in_one_batch_are_compared_in_order(redis_client):
    # given
    pubsub = subscribe(redis_client)
    batch = [
        reading(battery_id=5, timestamp=10),
        reading(battery_id=6, timestamp=10),
        reading(battery_id=5, timestamp=12, current=60),
        reading(battery_id=5, timestamp=11, current=70),
        reading(battery_id=5, timestamp=12, current=60),
    ]
    # when
    changed = readings_apply(readings=batch)
    # then
    assert changed == [True, True, True, False, False]
    assert redis_client.hget("battery:5:data", "timestamp") == "12"
    assert redis_client.hget("battery:5:data", "current") == "60"
    assert sorted(drain(pubsub)) == [("battery:5:data", "updates")] * 2 + [("battery:6:data", "updates")]
    assert redis_client.xlen("battery-changes") == 3


def test_the_final_state_does_not_depend_on_delivery_order(redis_client):
    # given the same readings in two orders, for two batteries; two share a timestamp
    first = [reading(battery_id=1, timestamp=5, voltage=300), reading(battery_id=1, timestamp=5, voltage=310)]
    first += [
        reading(battery_id=1, timestamp=4, voltage=390),
        reading(battery_id=1, timestamp=6, voltage=200),
    ]
    second = [reading(battery_id=2, timestamp=r.timestamp, voltage=r.voltage) for r in reversed(first)]
    # when
    readings_apply(readings=first)
    readings_apply(readings=second)
    # then
    expected = {"timestamp": "6", "voltage": "200"}
    assert {k: redis_client.hget("battery:1:data", k) for k in expected} == expected
    assert {k: redis_client.hget("battery:2:data", k) for k in expected} == expected


def test_many_readings_match_the_model_and_a_replay_is_a_no_op(redis_client):
    # given more readings than one script call takes, with duplicates and late ones
    readings = noisy_readings(count=3000, batteries=40)
    state, changes = expected_outcome(readings)
    pubsub = subscribe(redis_client)
    # when
    changed = readings_apply(readings=readings)
    replayed = readings_apply(readings=readings)
    # then
    assert sum(changed) == sum(changes.values())
    assert not any(replayed)
    assert {bid: redis_client.hgetall(f"battery:{bid}:data") for bid in state} == state
    assert redis_client.scard("info:batteries:ids") == 40
    assert redis_client.xlen("battery-changes") == sum(changes.values())
    published = drain(pubsub)
    assert len(published) == sum(changes.values())
    assert {channel for channel, _ in published} == {f"battery:{bid}:data" for bid in state}


def test_every_reading_adds_its_battery_id_even_when_it_changes_nothing(redis_client):
    # given batteries 1 and 2 stored, then the id set deleted behind the ingest's back
    stored = [reading(battery_id=1, timestamp=10), reading(battery_id=2, timestamp=10)]
    readings_apply(readings=stored)
    redis_client.delete("info:batteries:ids")
    pubsub = subscribe(redis_client)
    # when a replay of battery 1's reading and an older one of battery 2 arrive
    changed = readings_apply(readings=[stored[0], reading(battery_id=2, timestamp=9)])
    # then both ids are back, and nothing else changed or was announced
    assert changed == [False, False]
    assert redis_client.smembers("info:batteries:ids") == {"1", "2"}
    assert redis_client.hget("battery:2:data", "timestamp") == "10"
    assert redis_client.xlen("battery-changes") == 2
    assert drain(pubsub) == []


def test_the_script_is_reloaded_after_redis_forgot_it(redis_client):
    # given Redis lost its script cache (a restart does that)
    readings_apply(readings=[reading(battery_id=1, timestamp=1)])
    redis_client.script_flush()
    # when
    changed = readings_apply(readings=[reading(battery_id=1, timestamp=2)])
    # then
    assert changed == [True]
    assert redis_client.hget("battery:1:data", "timestamp") == "2"


def test_a_stored_hash_with_a_corrupt_field_is_overwritten(redis_client):
    # given a hash someone else wrote badly
    redis_client.hset("battery:3:data", mapping={"timestamp": "soon", "voltage": "1"})
    # when
    changed = readings_apply(readings=[reading(battery_id=3, timestamp=5)])
    # then
    assert changed == [True]
    assert redis_client.hget("battery:3:data", "voltage") == "400"
