"""Consumer throughput: the `notifications` consumer with its real handler, and the runner
with a no-op handler next to a raw redis-py XREADGROUP + XACK loop, in the same run.

    python -m bench.consume [--events 50000] [--batch 200]

Target: no-op runner ≥ 0.5 of the raw loop.
"""

import argparse
import os
import threading
import time

from .common import emit, log, start_stack


def noop(events) -> None:
    """The handler of the no-op consumer: measures the runner alone."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()

    stack = start_stack()
    os.environ.update(
        {k: v for k, v in stack.env.items() if k in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    )
    import django

    django.setup()
    from workers.connection import get_redis
    from workers.consumer import ConsumerLoop
    from workers.events import Event
    from workers.registry import ConsumerSpec, get_consumer

    client = get_redis()

    def fill(stream: str) -> None:
        for start in range(0, args.events, 5000):
            pipe = client.pipeline(transaction=False)
            for n in range(start, min(start + 5000, args.events)):
                payload = {"id": n, "description": f"bench {n}", "timestamp": "2026-01-01T00:00:00Z"}
                pipe.xadd(stream, Event(type="notifications.message.published", payload=payload).to_fields())
            pipe.execute()

    def drained(stream: str, group: str) -> bool:
        info = {g["name"]: g for g in client.xinfo_groups(stream)}.get(group)
        return bool(info) and info["pending"] == 0 and info["lag"] == 0

    def run_loop(spec: ConsumerSpec) -> float:
        fill(spec.stream_name)
        stop = threading.Event()
        loop = ConsumerLoop(spec, stop=stop, consumer="bench-0", trims=False, block_ms=100)
        started = time.perf_counter()
        handled = 0
        while handled < args.events:
            handled += loop.run_once()
        elapsed = time.perf_counter() - started
        assert drained(spec.stream_name, spec.group_name)
        return args.events / elapsed

    def run_raw(stream: str, group: str) -> float:
        fill(stream)
        client.xgroup_create(stream, group, id="0", mkstream=True)
        started = time.perf_counter()
        done = 0
        while done < args.events:
            response = client.xreadgroup(group, "raw-0", {stream: ">"}, count=args.batch, block=100)
            if not response:
                continue
            ids = [entry_id for entry_id, _ in response[0][1]]
            client.xack(stream, group, *ids)
            done += len(ids)
        return args.events / (time.perf_counter() - started)

    real = get_consumer("notifications")
    noop_spec = ConsumerSpec(
        name="bench-noop", stream="bench-noop", group="bench", handler="bench.consume.noop",
        batch=True, inbox=False, batch_size=args.batch,
    )  # fmt: skip
    log(f"raw XREADGROUP+XACK loop over {args.events} entries")
    raw_rate = run_raw("bench-raw", "bench")
    log(f"  {raw_rate:.0f}/s; runner with a no-op handler")
    noop_rate = run_loop(noop_spec)
    log(f"  {noop_rate:.0f}/s; notifications consumer (real handler: validate, log, bulk insert)")
    real_rate = run_loop(real)
    log(f"  {real_rate:.0f}/s")
    emit(
        {
            "benchmark": "consume",
            "events": args.events,
            "batch_size": args.batch,
            "raw_loop_events_per_s": round(raw_rate),
            "noop_runner_events_per_s": round(noop_rate),
            "ratio_noop_runner_to_raw": round(noop_rate / raw_rate, 3),
            "target_ratio": 0.5,
            "notifications_consumer_events_per_s": round(real_rate),
            "database": stack.env["DATABASE_URL"].split(":")[0],
        }
    )
    stack.close()


if __name__ == "__main__":
    main()
