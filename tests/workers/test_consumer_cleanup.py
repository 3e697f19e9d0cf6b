"""Consumers of dead workers are removed from their group, never with entries pending
(XGROUP DELCONSUMER would drop them), not even while another consumer claims entries."""

import threading

from workers.trimming import remove_idle_consumers

STREAM = "cleanup-stream"
GROUP = "cleanup-group"


def consumers(client) -> dict[str, int]:
    return {c["name"]: c["pending"] for c in client.xinfo_consumers(STREAM, GROUP)}


def test_a_gone_consumer_is_removed_and_one_holding_entries_is_kept(redis_of_each_version):
    client = redis_of_each_version
    # given: "gone" read one entry and acked it; "holder" read two and died holding them
    ids = [client.xadd(STREAM, {"n": str(n)}) for n in range(3)]
    client.xgroup_create(STREAM, GROUP, id="0")
    client.xreadgroup(GROUP, "gone", {STREAM: ">"}, count=1)
    client.xack(STREAM, GROUP, ids[0])
    client.xreadgroup(GROUP, "holder", {STREAM: ">"}, count=2)
    # when: both are idle for longer than the threshold (-1 ms: any idle time)
    removed = remove_idle_consumers(STREAM, GROUP, idle_ms=-1)
    # then
    assert removed == ["gone"]
    assert consumers(client) == {"holder": 2}
    assert [p["message_id"] for p in client.xpending_range(STREAM, GROUP, "-", "+", 10)] == ids[1:]


def test_a_consumer_idle_for_less_than_the_threshold_is_kept(redis_of_each_version):
    client = redis_of_each_version
    entry_id = client.xadd(STREAM, {"n": "1"})
    client.xgroup_create(STREAM, GROUP, id="0")
    client.xreadgroup(GROUP, "recent", {STREAM: ">"}, count=1)
    client.xack(STREAM, GROUP, entry_id)

    removed = remove_idle_consumers(STREAM, GROUP, idle_ms=3_600_000)

    assert removed == []
    assert consumers(client) == {"recent": 0}


def test_removing_consumers_while_another_claims_loses_no_entry(redis_of_each_version):
    # given: a dead consumer holding 2,000 entries
    client = redis_of_each_version
    pipe = client.pipeline(transaction=False)
    for n in range(2_000):
        pipe.xadd(STREAM, {"n": str(n)})
    ids = pipe.execute()
    client.xgroup_create(STREAM, GROUP, id="0")
    client.xreadgroup(GROUP, "dead", {STREAM: ">"}, count=2_000)
    done = threading.Event()

    def clean() -> None:
        while not done.is_set():
            remove_idle_consumers(STREAM, GROUP, idle_ms=-1)  # any consumer with nothing pending

    cleaner = threading.Thread(target=clean)
    # when: a rescuer claims them one at a time and acks each, while consumers are removed
    acked: list[tuple[str, int]] = []
    cleaner.start()
    try:
        while True:
            _, entries, *_ = client.xautoclaim(STREAM, GROUP, "rescuer", 0, "0-0", count=1)
            if not entries:
                break
            [(entry_id, _)] = entries
            acked.append((entry_id, client.xack(STREAM, GROUP, entry_id)))
    finally:
        done.set()
        cleaner.join()
    # then: each entry was still pending when its claimer acked it (none was dropped)
    assert acked == [(entry_id, 1) for entry_id in ids]
    assert client.xpending(STREAM, GROUP)["pending"] == 0
