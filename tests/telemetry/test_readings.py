"""Validation of one Kafka message into a Reading: the seed's types and ranges."""

import json

import pytest

from telemetry.readings import InvalidReading, Reading, reading_parse

VALID = {
    "battery_id": 7,
    "timestamp": 1_700_000_000,
    "voltage": 600,
    "current": 0,
    "temperature": -100,
    "state_of_charge": 100,
    "state_of_health": 0,
}


def test_a_valid_message_parses_into_a_reading():
    # given the bounds of every range, and a field the seed does not know
    message = json.dumps({**VALID, "firmware": "1.2"}).encode()
    # when
    result = reading_parse(message)
    # then
    assert result == Reading(7, 1_700_000_000, 600, 0, -100, 100, 0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (None, "empty message"),
        (b"[1, 2]", "not a JSON object: list"),
        (json.dumps({k: v for k, v in VALID.items() if k != "voltage"}).encode(), "voltage is missing"),
        (json.dumps({**VALID, "voltage": 12.5}).encode(), "voltage must be an integer, got 12.5"),
        (json.dumps({**VALID, "current": "3"}).encode(), "current must be an integer, got '3'"),
        (
            json.dumps({**VALID, "state_of_charge": True}).encode(),
            "state_of_charge must be an integer, got True",
        ),
        (json.dumps({**VALID, "voltage": 601}).encode(), "voltage 601 is out of range (0–600)"),
        (json.dumps({**VALID, "current": -1}).encode(), "current -1 is out of range (0–200)"),
        (json.dumps({**VALID, "temperature": -101}).encode(), "temperature -101 is out of range (-100–1000)"),
        (json.dumps({**VALID, "temperature": 1001}).encode(), "temperature 1001 is out of range (-100–1000)"),
        (
            json.dumps({**VALID, "state_of_charge": 101}).encode(),
            "state_of_charge 101 is out of range (0–100)",
        ),
        (json.dumps({**VALID, "state_of_health": -1}).encode(), "state_of_health -1 is out of range (0–100)"),
        (json.dumps({**VALID, "battery_id": -3}).encode(), "battery_id -3 is out of range (≥ 0)"),
        (json.dumps({**VALID, "battery_id": "7"}).encode(), "battery_id must be an integer, got '7'"),
        (json.dumps({**VALID, "timestamp": None}).encode(), "timestamp must be an integer, got None"),
        (json.dumps({**VALID, "timestamp": 2**53}).encode(), "timestamp 9007199254740992 is out of range"),
        (b'{"battery_id": 1, "timestamp": NaN}', "timestamp must be an integer, got nan"),
    ],
)
def test_an_invalid_message_is_refused_with_its_reason(raw, reason):
    # when / then
    with pytest.raises(InvalidReading) as error:
        reading_parse(raw)
    assert str(error.value).startswith(reason)
