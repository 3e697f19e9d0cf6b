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


def read_and_ack(client, group: str, consumer: str, *, count: int, ack: bool = True) -> list[str]:
    """Deliver the next `count` entries to `group`, and acknowledge them unless told not to."""
    read: list[str] = []
    while len(read) < count:
        reply = client.xreadgroup(group, consumer, {STREAM: ">"}, count=min(10_000, count - len(read)))
        if not reply:
            break
        read += [entry_id for entry_id, _ in reply[0][1]]
    if ack and read:
        client.xack(STREAM, group, *read)
    return read


def fill_fast(client, n: int) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(STREAM, {"n": str(i)})
    return pipe.execute()


def test_a_stream_acknowledged_as_fast_as_it_grows_stays_short(redis_client):
    # given: a group that acknowledges everything, and 20,000 entries between two trims
    # (2,000 events/s for 10 s; 667/s at the default 30 s), twice what one XTRIM ~ removes
    redis_client.xgroup_create(STREAM, "g", id="0", mkstream=True)
    lengths = []
    for _ in range(3):
        fill_fast(redis_client, 20_000)
        read_and_ack(redis_client, "g", "c", count=20_000)
        # when
        trim_stream(STREAM, cap=1_000_000)
        lengths.append(redis_client.xlen(STREAM))
    # then: after each trim at most one macro node (100 entries) below the safe point is left
    assert all(length <= 100 for length in lengths), lengths


def test_the_cap_counts_nothing_as_dropped_when_every_group_acknowledged(redis_client):
    # given: 15,000 entries that two groups have acknowledged
    fill_fast(redis_client, 15_000)
    for group in ("a", "b"):
        redis_client.xgroup_create(STREAM, group, id="0")
        read_and_ack(redis_client, group, f"{group}1", count=15_000)
    # when
    result = trim_stream(STREAM, cap=1_000)
    # then
    assert redis_client.xlen(STREAM) <= 1_000
    assert result.cap_dropped == 0
    assert stream_counters(STREAM)["trim_cap_dropped"] == 0


def test_the_cap_counts_exactly_the_entries_a_lagging_group_had_not_read(redis_of_each_version):
    redis_client = redis_of_each_version
    # given: 3,000 entries; "fast" acknowledged them all, "slow" only the first 1,000
    ids = fill_fast(redis_client, 3_000)
    for group in ("fast", "slow"):
        redis_client.xgroup_create(STREAM, group, id="0")
    read_and_ack(redis_client, "fast", "f1", count=3_000)
    read_and_ack(redis_client, "slow", "s1", count=1_000)
    # when: the cap is 500
    result = trim_stream(STREAM, cap=500)
    # then: the newest 500 remain, and the count is that of slow's unread entries removed
    remaining = [entry_id for entry_id, _ in redis_client.xrange(STREAM)]
    assert remaining == ids[-500:]
    assert result.cap_dropped == len(set(ids[1_000:]) - set(remaining)) == 1_500
    assert stream_counters(STREAM) == {"trim_cap_hits": 1, "trim_cap_dropped": 1_500}


def test_the_cap_counts_a_pending_entry_it_removes_and_not_the_acknowledged_ones_after_it(redis_of_each_version):
    redis_client = redis_of_each_version
    # given: a group that read 3,000 entries and acknowledged all but the 11th
    ids = fill_fast(redis_client, 3_000)
    redis_client.xgroup_create(STREAM, "g", id="0")
    read_and_ack(redis_client, "g", "c", count=3_000, ack=False)
    redis_client.xack(STREAM, "g", *ids[:10], *ids[11:])
    # when
    result = trim_stream(STREAM, cap=500)
    # then: the safe point is the pending entry; the cap removed it and 2,000-odd
    # acknowledged ones, and only it counts as dropped
    assert result.safe_point == ids[10]
    assert [entry_id for entry_id, _ in redis_client.xrange(STREAM)] == ids[-500:]
    assert result.cap_dropped == 1
