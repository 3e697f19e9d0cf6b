"""Benchmark: `runworker kafka-ingest` against a seed-style one-message-at-a-time loop.

    python -m bench.kafka_ingest [--count 100000] [--batteries 1000] [--baseline-count N]

Starts a Tansu broker and a Redis server, produces the readings to two topics (one per
contender, same readings), then
1. starts `python manage.py runworker kafka-ingest` as a subprocess and times it from
   process start to its first change in Redis, and on to the last record handled;
2. runs, in this process, a loop in the seed's style against the same broker and Redis:
   poll one message, HSET, SADD, PUBLISH one command at a time, commit the message's
   offset (asynchronously), next message.
Both start from an empty Redis database of their own (db 0 and db 1 of the same server).
Progress goes to stderr, one JSON document to stdout. Never fails on a timing.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import redis
from confluent_kafka import Consumer

from commsplatform.devservers import KafkaBroker, RedisServer

from .common import CpuMeter, process_tree, result_row

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATE = 25_000
TARGET_RATIO = 15.0
TARGET_FIRST_S = 3.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def produce(bootstrap: str, topic: str, count: int, batteries: int) -> float:
    from telemetry.simulation import telemetry_simulate

    started = time.perf_counter()
    telemetry_simulate(
        bootstrap_servers=bootstrap,
        topic=topic,
        count=count,
        batteries=batteries,
        seed=1,
        progress=lambda sent: log(f"  produced {sent}/{count} to {topic}"),
    )
    return count / (time.perf_counter() - started)


def cpu_us_per_message(meter: CpuMeter, messages: int) -> dict[str, float]:
    """CPU µs per message of each part (and of the whole machine) since the meter started."""
    return {name: round(ms * 1000, 2) for name, ms in meter.per_request_ms(messages).items()}


def run_ingest(bootstrap: str, redis_url: str, topic: str, count: int, tmp: Path, servers: dict) -> dict:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "commsplatform.settings.base",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "REDIS_URL": redis_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP": "bench-ingest",
        "LOG_LEVEL": "WARNING",
        # What `make run` gives its embedded Tansu's consumers (printed in the result).
        "KAFKA_SESSION_TIMEOUT_MS": str(KafkaBroker.consumer_session_timeout_ms),
    }
    log_file = open(tmp / "ingest.log", "wb")  # noqa: SIM115 (kept open for the child's lifetime)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "kafka-ingest"],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    first = None
    handled = handled_at_first = 0
    last_report = started
    try:
        while handled < count:
            if process.poll() is not None:
                raise RuntimeError(f"kafka-ingest exited early: {(tmp / 'ingest.log').read_text()[-2000:]}")
            handled = int(client.hget("workers:metrics:consumer:kafka-ingest", "processed") or 0)
            handled += int(client.hget("workers:metrics:consumer:kafka-ingest", "dead_lettered") or 0)
            now = time.perf_counter()
            if first is None and (handled or client.exists("battery-changes")):
                first, handled_at_first = now, handled
                meter = CpuMeter({"ingest": process_tree(process.pid), **servers})
                log(f"  kafka-ingest handled its first record {first - started:.2f} s after start")
            if now - last_report > 2:
                log(f"  kafka-ingest: {handled}/{count}")
                last_report = now
            time.sleep(0.02)
        finished = time.perf_counter()
        cpu = cpu_us_per_message(meter, count - handled_at_first)
    finally:
        process.terminate()
        process.wait(30)
        log_file.close()
    assert first is not None
    # Timed from the first batch seen written: the records of that batch are not counted.
    timed = count - handled_at_first
    return {
        "messages": count,
        "messages_timed": timed,
        "first_message_s": round(first - started, 2),
        "seconds": round(finished - first, 3),
        "messages_per_s": round(timed / (finished - first)),
        "messages_per_s_incl_startup": round(count / (finished - started)),
        "cpu_us_per_message": cpu,
        "batteries_stored": client.scard("info:batteries:ids"),
        "changes_stream_length": client.xlen("battery-changes"),
    }


def run_seed_style(bootstrap: str, redis_url: str, topic: str, count: int, servers: dict) -> dict:
    """The seed's shape: one message per round trip, three Redis commands, commit each."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-seed-style",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": KafkaBroker.consumer_session_timeout_ms,
        }
    )
    consumer.subscribe([topic])
    started = time.perf_counter()
    first = None
    handled = 0
    last_report = started
    try:
        while handled < count:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            if first is None:  # timed from its first message, which is counted
                first = time.perf_counter()
                log(f"  seed-style loop got its first message {first - started:.2f} s after start")
                meter = CpuMeter({"loop": lambda: [psutil.Process()], **servers})
            reading = json.loads(message.value())
            battery_id = reading.pop("battery_id")
            key = f"battery:{battery_id}:data"
            client.hset(key, mapping=reading)
            client.sadd("info:batteries:ids", battery_id)
            client.publish(key, "updates")
            consumer.commit(message=message, asynchronous=True)
            handled += 1
            now = time.perf_counter()
            if now - last_report > 2:
                log(f"  seed-style loop: {handled}/{count}")
                last_report = now
        finished = time.perf_counter()
        cpu = cpu_us_per_message(meter, count)
    finally:
        consumer.close()
    assert first is not None
    return {
        "messages": count,
        "messages_timed": count,
        "first_message_s": round(first - started, 2),
        "seconds": round(finished - first, 3),
        "messages_per_s": round(count / (finished - first)),
        "cpu_us_per_message": cpu,
        "batteries_stored": client.scard("info:batteries:ids"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batteries", type=int, default=1000)
    parser.add_argument("--baseline-count", type=int, help="readings for the seed-style loop (default --count)")
    args = parser.parse_args()
    baseline_count = args.baseline_count or args.count

    tmp = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commsplatform.settings.base")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'db.sqlite3'}")
    import django

    django.setup()

    log("starting Tansu and Redis")
    with KafkaBroker() as broker, RedisServer() as redis_server:
        base_url = redis_server.url.rsplit("/", 1)[0]
        log(f"producing {args.count} readings for {args.batteries} batteries (and {baseline_count} for the baseline)")
        produce_rate = produce(broker.bootstrap, "bench-ingest", args.count, args.batteries)
        produce(broker.bootstrap, "bench-seed-style", baseline_count, args.batteries)

        log("kafka-ingest (runworker subprocess)")
        servers = {"broker": process_tree(broker.pid), "redis": process_tree(redis_server.pid)}
        ingest = run_ingest(broker.bootstrap, f"{base_url}/0", "bench-ingest", args.count, tmp, servers)
        log(f"  {ingest['messages_per_s']} messages/s")
        log("seed-style loop")
        baseline = run_seed_style(broker.bootstrap, f"{base_url}/1", "bench-seed-style", baseline_count, servers)
        log(f"  {baseline['messages_per_s']} messages/s")

    ratio = ingest["messages_per_s"] / baseline["messages_per_s"]
    print(
        json.dumps(
            {
                "benchmark": "kafka_ingest",
                **result_row(
                    name="kafka: kafka-ingest messages/s vs the seed-style loop",
                    figure=ingest["messages_per_s"],
                    baseline=baseline["messages_per_s"],
                    target=TARGET_RATIO,
                ),
                "more": [
                    result_row(
                        name="kafka: kafka-ingest first message, s after process start",
                        figure=ingest["first_message_s"],
                        baseline=None,
                        target=TARGET_FIRST_S,
                        unit="s",
                    )
                ],
                "readings": args.count,
                # Both contenders' group session on the embedded Tansu, as `make run` sets
                # it: the broker holds a group join for half of it.
                "session_timeout_ms": KafkaBroker.consumer_session_timeout_ms,
                "batteries": args.batteries,
                "produce_messages_per_s": round(produce_rate),
                "kafka_ingest": ingest,
                "baseline_seed_style": baseline,
                "targets": {
                    "ratio": TARGET_RATIO,
                    "messages_per_s": TARGET_RATE,
                    "first_message_s": TARGET_FIRST_S,
                },
                "meets_targets": {
                    "ratio": ratio >= TARGET_RATIO,
                    "messages_per_s": ingest["messages_per_s"] >= TARGET_RATE,
                    "first_message_s": ingest["first_message_s"] <= TARGET_FIRST_S,
                },
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
