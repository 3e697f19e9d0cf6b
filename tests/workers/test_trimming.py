"""Trimming keeps every entry some group still needs."""

from workers.metrics import stream_counters
from workers.trimming import trim_stream

STREAM = "trim-test"


def fill(client, n: int) -> list[str]:
    return [client.xadd(STREAM, {"n": str(i)}) for i in range(n)]


def test_entries_a_group_has_not_acknowledged_are_kept(redis_client):
    # given: 300 entries; group A acked the first 200, group B has read 100 and acked 50
    ids = fill(redis_client, 300)
    redis_client.xgroup_create(STREAM, "a", id="0")
    redis_client.xgroup_create(STREAM, "b", id="0")
    redis_client.xreadgroup("a", "a1", {STREAM: ">"}, count=200)
    redis_client.xack(STREAM, "a", *ids[:200])
    redis_client.xreadgroup("b", "b1", {STREAM: ">"}, count=100)
    redis_client.xack(STREAM, "b", *ids[:50])
    # when
    result = trim_stream(STREAM, cap=10_000)
    # then: the oldest entry B still needs (its 51st) is the safe point; nothing at or above it goes
    assert result.safe_point == ids[50]
    remaining = [entry_id for entry_id, _ in redis_client.xrange(STREAM)]
    assert remaining[-250:] == ids[50:]
    assert len(remaining) <= 300
    assert result.cap_dropped == 0


def test_an_unread_stream_is_not_trimmed_below_its_cap(redis_client):
    ids = fill(redis_client, 50)
    redis_client.xgroup_create(STREAM, "slow", id="0")

    result = trim_stream(STREAM, cap=10_000)

    assert result.removed == 0
    assert [entry_id for entry_id, _ in redis_client.xrange(STREAM)] == ids


def test_the_cap_is_a_last_resort_that_is_reported(redis_client):
    fill(redis_client, 2000)
    redis_client.xgroup_create(STREAM, "stuck", id="0")

    result = trim_stream(STREAM, cap=500)

    assert result.cap_dropped > 0
    assert 500 <= redis_client.xlen(STREAM) < 2000
    assert stream_counters(STREAM) == {"trim_cap_hits": 1, "trim_cap_dropped": result.cap_dropped}
