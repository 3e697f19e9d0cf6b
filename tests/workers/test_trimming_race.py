"""Trimming while a consumer acks as fast as it can (found by the weather benchmark: the
trim's XPENDING could find the pending list already empty and the worker thread died)."""

import threading

from workers.trimming import trim_stream

STREAM = "race-stream"
GROUP = "race-group"


def test_trim_survives_acks_racing_its_reads(redis_client):
    # given: a consumer that keeps one entry pending for a moment at a time
    redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            redis_client.xadd(STREAM, {"n": "1"})
            for _, entries in redis_client.xreadgroup(GROUP, "c", {STREAM: ">"}, count=10) or []:
                redis_client.xack(STREAM, GROUP, *[entry_id for entry_id, _ in entries])

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        # when: trimming runs again and again meanwhile
        points = [trim_stream(STREAM).safe_point for _ in range(1500)]
    finally:
        stop.set()
        consumer.join()

    # then: every trim found a safe point (none raised)
    assert len(points) == 1500
    assert all(point is not None for point in points)
