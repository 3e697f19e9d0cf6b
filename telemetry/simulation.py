"""Realistic battery readings for `simulate_telemetry` and the benchmark.

Each battery has a slowly drifting state: it discharges under load and recharges when
empty, its voltage follows the state of charge, its temperature follows the current, and
its health wears down very slowly. Readings come round-robin over the batteries, one per
battery per tick, so every battery's timestamps increase.
"""

import json
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from .readings import Reading

logger = logging.getLogger(__name__)


@dataclass
class _Battery:
    battery_id: int
    state_of_charge: float
    state_of_health: float
    charging: bool
    temperature: float


def readings_generate(*, count: int, batteries: int, seed: int = 0, start: int | None = None) -> Iterator[Reading]:
    """`count` readings over `batteries` batteries (ids 1..batteries); deterministic for a seed."""
    rng = random.Random(seed)
    start = int(time.time()) if start is None else start
    fleet = [
        _Battery(i, rng.uniform(20, 100), rng.uniform(80, 100), rng.random() < 0.3, rng.uniform(15, 35))
        for i in range(1, batteries + 1)
    ]
    for index in range(count):
        tick, slot = divmod(index, batteries)
        battery = fleet[slot]
        current = rng.uniform(20, 120) if battery.charging else rng.uniform(5, 180)
        delta = current / 400
        battery.state_of_charge += delta if battery.charging else -delta
        if battery.state_of_charge >= 100:
            battery.state_of_charge, battery.charging = 100, False
        elif battery.state_of_charge <= 5:
            battery.state_of_charge, battery.charging = 5, True
        battery.state_of_health = max(0.0, battery.state_of_health - rng.uniform(0, 0.002))
        battery.temperature += (20 + current / 8 - battery.temperature) * 0.1 + rng.uniform(-0.5, 0.5)
        yield Reading(
            battery_id=battery.battery_id,
            timestamp=start + tick,
            voltage=round(320 + battery.state_of_charge * 0.9 + rng.uniform(-3, 3)),
            current=round(current),
            temperature=round(min(1000, max(-100, battery.temperature))),
            state_of_charge=round(battery.state_of_charge),
            state_of_health=round(battery.state_of_health),
        )


def encode_reading(reading: Reading) -> bytes:
    return json.dumps(reading.as_dict(), separators=(",", ":")).encode()


class BrokerUnreachable(Exception):
    """No bootstrap server accepts a connection; nothing was produced."""


def broker_check(*, bootstrap_servers: str, timeout: float = 5.0) -> None:
    """Raise BrokerUnreachable unless one of the bootstrap servers accepts a TCP connection.

    librdkafka would retry quietly (and log every refused connection) until a timeout;
    this answers at once, in one line.
    """
    reasons = []
    for server in bootstrap_servers.split(","):
        address = server.strip().rpartition("://")[2]
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
            return
        except ValueError:
            reasons.append(f"{address!r} is not host:port")
        except OSError as exc:
            reasons.append(f"{address}: {exc.strerror or exc}")
    raise BrokerUnreachable("; ".join(reasons))


def topic_ensure(*, bootstrap_servers: str, topic: str, partitions: int = 1, timeout: float = 10) -> None:
    """Create the topic if it does not exist."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    future = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic]
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def producer_for(bootstrap_servers: str, **config) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            **config,
        }
    )


def readings_produce(
    *,
    bootstrap_servers: str,
    topic: str,
    values: Iterator[tuple[bytes | None, bytes]],
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> int:
    """Produce (key, value) pairs to `topic`, at most `rate` per second; return how many
    the broker acknowledged (raises if any delivery failed)."""
    producer = producer_for(bootstrap_servers)
    failures: list[str] = []
    delivered = 0

    def on_delivery(error, message) -> None:
        nonlocal delivered
        if error is not None:
            failures.append(str(error))
        else:
            delivered += 1

    started = time.monotonic()
    for sent, (key, value) in enumerate(values, start=1):
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let it drain
                producer.poll(0.1)
        producer.poll(0)
        if rate:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        if progress and sent % progress_every == 0:
            progress(sent)
    remaining = producer.flush(60)
    if failures or remaining:
        raise KafkaException(f"{len(failures)} deliveries failed, {remaining} unsent; first: {failures[:1]}")
    return delivered


def telemetry_simulate(
    *,
    bootstrap_servers: str,
    topic: str,
    count: int,
    batteries: int,
    rate: float | None = None,
    partitions: int = 1,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Produce `count` realistic readings for `batteries` batteries, keyed by battery id
    (so each battery's readings stay in order on one partition)."""
    broker_check(bootstrap_servers=bootstrap_servers)
    topic_ensure(bootstrap_servers=bootstrap_servers, topic=topic, partitions=partitions)
    values = (
        (str(reading.battery_id).encode(), encode_reading(reading))
        for reading in readings_generate(count=count, batteries=batteries, seed=seed)
    )
    return readings_produce(
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        values=values,
        rate=rate,
        progress=progress,
        progress_every=max(1, min(10_000, count // 10)),
    )
