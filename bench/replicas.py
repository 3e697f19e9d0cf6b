"""Horizontal workers: each consumer's throughput with 1, 2 and 4 `runworker` processes.

    python -m bench.replicas [--only notifications,weather,...] [--scale 1.0]

One PostgreSQL and one Redis (commsplatform.devservers) for the whole run. For each
consumer and each replica count k: the consumer is paused (its Redis pause flag, which
every loop checks every WORKER_PAUSE_CHECK_S = 0.1 s here), k `runworker <name>
--consumer-name bench-<name>-<i>` processes start and report in, the stream is filled
with N entries, the consumer is resumed, and the clock runs until the group's
pending + lag is 0. Process start-up is therefore not in the figure. The CPU seconds of
the workers, PostgreSQL and Redis over that window are in the JSON (`cpu_cores_used`:
the machine has 2 cores, so a consumer that already uses ~1 core with one replica can
gain at most ~2× however many replicas it gets).

Consumers: `notifications` (events → rows), `weather` (requests → replies, 4 terminals
per process as shipped), `inventory-reserve` (the first saga step: orders.order.placed →
reservations), `notification-router` (recipient batches → ledger rows and email batches;
CAMPAIGN_FANOUT_CHUNK=200 so 4 replicas have batches to share), `email-sender` against
an SMTP server that waits 20 ms before answering each DATA (the I/O-bound stage;
EMAIL_SENDER_CONCURRENCY=1 so a replica is one SMTP connection, EMAIL_BATCH_SIZE=10),
and `kafka-ingest` on a 6-partition topic with 1, 2 and 3 processes.

Also the ceiling of one Redis stream: a redis-py pipeline loop XADDing and then
XREADGROUP + XACKing batches of 1,000 (one client each), and `redis-benchmark` XADD
with 50 clients pipelining 16.

Figures: the speedup of 2 and 4 replicas over one. Targets: ≥ 1.8 and ≥ 3.2 for the
email sender (I/O-bound); the CPU-bound consumers are listed with target 1.0 (no worse
than one process): on 2 cores they cannot pass ~2×. Never fails on a timing.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from commsplatform.devservers import KafkaBroker, PostgresServer, RedisServer, SmtpServer

from .common import CpuMeter, emit, log, process_tree, stop_processes

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SMTP_DELAY_S = 0.020
CONSUMERS = ["notifications", "weather", "inventory-reserve", "notification-router", "email-sender", "kafka-ingest"]
TARGETS = {"email-sender": {2: 1.8, 4: 3.2}}


class Bench:
    def __init__(self, tmp: Path, postgres: PostgresServer, redis_server: RedisServer, smtp: SmtpServer):
        self.tmp = tmp
        self.postgres = postgres
        self.redis_server = redis_server
        self.smtp = smtp
        from workers.connection import get_redis

        self.client = get_redis()

    def spawn(self, name: str, index: int, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [PYTHON, "manage.py", "runworker", name, "--consumer-name", f"bench-{name}-{index}"],
            cwd=ROOT,
            env={**os.environ, **(extra_env or {})},
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / f"{name}-{index}.log", "ab"),  # noqa: SIM115
        )

    def start_paused(self, name: str, k: int, extra_env: dict[str, str] | None = None) -> list[subprocess.Popen]:
        """k processes of `name`, paused, each having reported in (so started and connected)."""
        from workers.heartbeat import replicas_key
        from workers.steering import paused_key

        self.client.set(paused_key(name), "1")
        self.client.delete(replicas_key(name))
        processes = [self.spawn(name, index, extra_env) for index in range(k)]
        deadline = time.monotonic() + 60
        while len(self.client.hkeys(replicas_key(name))) < k:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                stop_processes(processes)
                raise RuntimeError(f"{name}: {k} replicas did not report in; logs in {self.tmp}")
            time.sleep(0.05)
        return processes

    def meter(self, processes: list[subprocess.Popen], extra: dict | None = None) -> CpuMeter:
        return CpuMeter(
            {
                "workers": lambda: [p for w in processes for p in process_tree(w.pid)()],
                "postgres": process_tree(self.postgres.pid),
                "redis": process_tree(self.redis_server.pid),
                **(extra or {}),
            }
        )

    def drained(self, stream: str, group: str) -> bool:
        groups = {g["name"]: g for g in self._groups(stream)}
        info = groups.get(group)
        return bool(info) and info["pending"] == 0 and info["lag"] == 0

    def run_stream(self, name: str, k: int, fill: Callable[[], int], unit: str = "entries") -> dict:
        """Pause, start k, fill (returns the count of work units), resume, time the drain."""
        from workers.keys import dead_letter_stream
        from workers.registry import get_consumer
        from workers.steering import paused_key

        spec = get_consumer(name)
        self.client.delete(spec.stream_name)  # its group goes with it; the workers re-create it at 0
        units = fill()
        processes = self.start_paused(name, k)
        try:
            cpu = self.meter(processes)
            wal_before = wal_lsn()
            started = time.perf_counter()
            self.client.set(paused_key(name), "0")
            while not self.drained(spec.stream_name, spec.group_name):
                if any(p.poll() is not None for p in processes):
                    raise RuntimeError(f"{name}: a worker exited; logs in {self.tmp}")
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
            used = cpu.per_request_ms(1)
        finally:
            stop_processes(processes)
        row = result_row(name, k, units, unit, elapsed, used)
        row["wal_bytes_per_unit"] = round(wal_since(wal_before) / units, 1)
        row["dead_lettered"] = self.client.xlen(dead_letter_stream(spec.stream_name))
        if row["dead_lettered"]:
            log(f"  {name} × {k}: {row['dead_lettered']} dead letters (see {self.tmp})")
        self.client.delete(dead_letter_stream(spec.stream_name))
        return row

    def _groups(self, stream: str) -> list[dict]:
        import redis

        try:
            return self.client.xinfo_groups(stream)
        except redis.ResponseError:
            return []


def wal_lsn() -> str:
    """PostgreSQL's current WAL position (what the workers write shows as WAL bytes)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        return cursor.fetchone()[0]


def wal_since(lsn: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [lsn])
        return int(cursor.fetchone()[0])


def result_row(name: str, k: int, units: int, unit: str, elapsed: float, used_ms: dict[str, float]) -> dict:
    machine_s = used_ms.pop("machine") / 1000
    row = {
        "consumer": name,
        "replicas": k,
        unit: units,
        "seconds": round(elapsed, 3),
        f"{unit}_per_s": round(units / elapsed, 1),
        "cpu_ms_per_unit": {part: round(ms / units, 3) for part, ms in used_ms.items()},
        "cpu_cores_used": {part: round(ms / 1000 / elapsed, 2) for part, ms in used_ms.items()},
        "machine_cores_used": round(machine_s / elapsed, 2),
    }
    log(
        f"  {name} × {k}: {units} {unit} in {elapsed:.2f} s = {units / elapsed:.0f}/s; "
        f"cores: {row['cpu_cores_used']} (machine {row['machine_cores_used']})"
    )
    return row


# -- fills ---------------------------------------------------------------------------------


def pipelined_xadd(client, stream: str, events) -> int:
    count = 0
    pipe = client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream, event.to_fields())
        count += 1
        if count % 2000 == 0:
            pipe.execute()
    pipe.execute()
    return count


def fill_notifications(bench: Bench, n: int) -> Callable[[], int]:
    from django.conf import settings

    from workers.events import Event

    def fill() -> int:
        events = (
            Event(
                type="notifications.message.published",
                payload={"id": i, "description": f"bench {i}", "timestamp": "2026-01-01T00:00:00Z"},
            )
            for i in range(n)
        )
        return pipelined_xadd(bench.client, settings.STREAMS["events"], events)

    return fill


def fill_weather(bench: Bench, n: int) -> Callable[[], int]:
    import uuid

    import orjson
    from django.conf import settings

    from weather.services import REQUEST_TYPE
    from workers.events import Event

    def request(i: int) -> Event:
        request_id = str(uuid.uuid4())
        data = {"requestId": request_id, "city": f"City {i % 50}", "location": "bench"}
        return Event(
            id=request_id,
            type=REQUEST_TYPE,
            payload={**data, "deadline_ms": int((time.time() + 3600) * 1000)},
            extra={"requestId": request_id, "data": orjson.dumps(data).decode()},
        )

    return lambda: pipelined_xadd(bench.client, settings.STREAMS["weather_requests"], (request(i) for i in range(n)))


def fill_orders(bench: Bench, n: int) -> Callable[[], int]:
    from django.conf import settings

    from orders.events import OrderPlaced
    from orders.models import Order

    def fill() -> int:
        orders = Order.objects.bulk_create(
            [Order(customer_id=101, product_ids=[201, 202 + i % 4]) for i in range(n)], batch_size=1000
        )
        events = (
            OrderPlaced(order_id=o.pk, customer_id=101, lines={201: 1, 202 + i % 4: 1}).event()
            for i, o in enumerate(orders)
        )
        return pipelined_xadd(bench.client, settings.STREAMS["orders"], events)

    return fill


def campaign_fanned_out(name: str) -> int:
    """A campaign to every recipient, fanned out in this process onto `notification`."""
    from campaigns.services import campaign_create, campaign_fanout, campaign_transition
    from campaigns.states import SEND

    campaign = campaign_create(name=name, subject="Bench", body="Hello", send=False)
    campaign_transition(campaign_id=campaign.pk, transition=SEND)
    return campaign_fanout(campaign_id=campaign.pk)


def fill_router(n: int) -> Callable[[], int]:
    counter = iter(range(1000))
    return lambda: campaign_fanned_out(f"router bench {next(counter)}")


def fill_emails(bench: Bench) -> Callable[[], int]:
    """Fan out and route a campaign in this process, so `email` holds its batches."""
    from workers.consumer import ConsumerLoop
    from workers.registry import get_consumer

    counter = iter(range(1000))

    def fill() -> int:
        import threading

        router = get_consumer("notification-router")
        bench.client.delete(router.stream_name)
        bench.smtp.clear()
        recipients = campaign_fanned_out(f"email bench {next(counter)}")
        loop = ConsumerLoop(router, stop=threading.Event(), consumer="bench-router", trims=False, block_ms=50)
        while not bench.drained(router.stream_name, router.group_name):
            loop.run_once()
        return recipients

    return fill


# -- Kafka ---------------------------------------------------------------------------------


def run_kafka(bench: Bench, broker: KafkaBroker, k: int, n: int) -> dict:
    from telemetry.simulation import telemetry_simulate
    from workers.keys import consumer_metrics
    from workers.steering import paused_key

    topic = f"bench-replicas-{k}"
    broker.create_topic(topic, partitions=6)
    telemetry_simulate(bootstrap_servers=broker.bootstrap, topic=topic, count=n, batteries=1000, seed=k)
    metrics = consumer_metrics("kafka-ingest", None)
    bench.client.delete(metrics)
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "KAFKA_TOPIC": topic, "KAFKA_GROUP": f"bench-replicas-{k}"}
    processes = bench.start_paused("kafka-ingest", k, env)
    try:
        # Paused loops keep polling (so they hold their session); give the group the
        # time to settle on all k members before the clock starts.
        time.sleep(8)
        cpu = bench.meter(processes, {"kafka_broker": process_tree(broker.pid)})
        started = time.perf_counter()
        bench.client.set(paused_key("kafka-ingest"), "0")
        deadline = time.monotonic() + 120
        while True:
            counts = bench.client.hmget(metrics, "processed", "dead_lettered")
            if sum(int(c or 0) for c in counts) >= n:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"kafka-ingest × {k} did not finish; logs in {bench.tmp}")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        used = cpu.per_request_ms(1)
    finally:
        stop_processes(processes)
    return result_row("kafka-ingest", k, n, "messages", elapsed, used)


# -- one stream's ceiling -------------------------------------------------------------------


def raw_stream_ceiling(bench: Bench, n: int) -> dict:
    client = bench.client
    stream, group = "bench-raw", "bench"
    client.delete(stream)
    fields = {"type": "notifications.message.published", "id": "x" * 36, "payload": "y" * 120}
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(stream, fields)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    xadd_rate = n / (time.perf_counter() - started)
    client.xgroup_create(stream, group, id="0")
    started = time.perf_counter()
    done = 0
    while done < n:
        response = client.xreadgroup(group, "raw-0", {stream: ">"}, count=1000)
        if not response:
            break
        ids = [entry_id for entry_id, _ in response[0][1]]
        client.xack(stream, group, *ids)
        done += len(ids)
    read_rate = done / (time.perf_counter() - started)
    client.delete(stream)
    result = {
        "redis_py_pipelined_xadd_per_s": round(xadd_rate),
        "redis_py_xreadgroup_xack_1000_per_s": round(read_rate),
    }
    tool = shutil.which("redis-benchmark")
    if tool:
        address = bench.redis_server.url.split("//", 1)[1].split("/", 1)[0]
        host, port = address.rsplit(":", 1)
        # Pipelined 16 deep (the consumers' and a pipeline's shape), and one command per
        # round trip (the web's shape: each POST /event is one XADD of its own).
        for label, depth in (("redis_benchmark_xadd_pipelined_16_per_s", "16"), ("redis_benchmark_xadd_per_s", "1")):
            done_run = subprocess.run(
                [tool, "-h", host, "-p", port, "-n", str(n * 2), "-c", "50", "-P", depth, "--csv",
                 "XADD", "bench-rb", "*", "type", "x" * 30, "payload", "y" * 120],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            lines = [line for line in done_run.stdout.splitlines() if line.startswith('"XADD')]
            if lines:
                result[label] = round(float(lines[-1].split(",")[1].strip('"')))
            client.delete("bench-rb")
    log(f"  one stream: {result}")
    return result


# -- main ------------------------------------------------------------------------------------


def speedups(rows: list[dict]) -> list[dict]:
    """The table rows: speedup of each k over k=1, per consumer."""
    out = []
    consumers = sorted(dict.fromkeys(r["consumer"] for r in rows), key=lambda c: c != "email-sender")
    for consumer in consumers:  # the I/O-bound stage first: its row is the headline
        mine = {r["replicas"]: r for r in rows if r["consumer"] == consumer}
        rate_key = next(key for key in mine[1] if key.endswith("_per_s"))
        one = mine[1][rate_key]
        for k, row in mine.items():
            if k == 1:
                continue
            target = TARGETS.get(consumer, {}).get(k, 1.0)
            ratio = row[rate_key] / one
            out.append(
                {
                    "name": f"bench.replicas {consumer}: speedup of {k} replicas ({rate_key})",
                    "figure": round(ratio, 2),
                    "baseline": 1.0,
                    "ratio": round(ratio, 3),
                    "target": target,
                    "met": ratio >= target,
                    "rate": row[rate_key],
                    "rate_one_replica": one,
                }
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(CONSUMERS))
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every entry count")
    args = parser.parse_args()
    only = args.only.split(",")

    def n(count: int) -> int:
        return max(1, int(count * args.scale))

    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    postgres = PostgresServer().start()
    redis_server = RedisServer().start()
    smtp = SmtpServer().start()
    smtp.delay_data(SMTP_DELAY_S)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "commsplatform.settings.base",
            "DJANGO_DEBUG": "0",
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis_server.url,
            "LOG_LEVEL": "WARNING",
            "EMAIL_HOST": smtp.host,
            "EMAIL_PORT": str(smtp.port),
            "EMAIL_SENDER_CONCURRENCY": "1",
            "EMAIL_BATCH_SIZE": "10",
            "CAMPAIGN_FANOUT_CHUNK": "200",
            "WORKER_PAUSE_CHECK_S": "0.1",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    log(f"servers up; logs in {tmp}")
    bench = Bench(tmp, postgres, redis_server, smtp)
    rows: list[dict] = []
    result: dict = {"benchmark": "replicas", "cpus": os.cpu_count()}
    try:
        from accounts.models import Account
        from inventory.models import Product
        from orders.services import shop_reset_to_seed
        from users.services import recipients_generate

        shop_reset_to_seed()
        Product.objects.update(stock=10**9)
        Account.objects.update(balance=10**12)
        plan: list[tuple[str, Callable[[], int], str]] = [
            ("notifications", fill_notifications(bench, n(60_000)), "entries"),
            ("weather", fill_weather(bench, n(8_000)), "requests"),
            ("inventory-reserve", fill_orders(bench, n(4_000)), "orders"),
        ]
        for name, fill, unit in plan:
            if name in only:
                log(f"{name}: 1, 2, 4 replicas")
                rows += [bench.run_stream(name, k, fill, unit) for k in (1, 2, 4)]
        if "email-sender" in only:
            recipients_generate(count=n(300), seed=1)
            log(f"email-sender: 1, 2, 4 replicas, SMTP DATA +{SMTP_DELAY_S * 1000:.0f} ms, {n(300)} recipients")
            rows += [bench.run_stream("email-sender", k, fill_emails(bench), "mails") for k in (1, 2, 4)]
            result["email_sender_mails_accepted_last_run"] = len(smtp.messages)
        if "notification-router" in only:
            recipients_generate(count=n(12_000), seed=2)
            log("notification-router: 1, 2, 4 replicas")
            rows += [bench.run_stream("notification-router", k, fill_router(0), "recipients") for k in (1, 2, 4)]
        if "kafka-ingest" in only:
            log("kafka-ingest: 6 partitions, 1, 2, 3 processes")
            with KafkaBroker() as broker:
                rows += [run_kafka(bench, broker, k, n(60_000)) for k in (1, 2, 3)]
        log("one Redis stream's ceiling")
        result["one_stream_ceiling"] = raw_stream_ceiling(bench, n(100_000))
    finally:
        smtp.stop()
        redis_server.stop()
        postgres.close()
    table = speedups(rows)
    if table:
        result.update({k: v for k, v in table[0].items() if k != "name"})
        result["name"] = table[0]["name"]
        result["more"] = table[1:]
    result["runs"] = rows
    result["load_average"] = os.getloadavg()
    result["machine_cpu_percent_idle_at_end"] = psutil.cpu_times_percent(interval=0.2).idle
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
