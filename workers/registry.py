"""Every long-running loop in one table, each run by `runworker <name>` (workers.runner).

Three kinds of entry (`entry.kind`):
- `stream` (`ConsumerSpec`, in `CONSUMERS`): a consumer group on a Redis stream, run by
  workers.consumer.ConsumerLoop;
- `kafka` (`KafkaSpec`, in `KAFKA_CONSUMERS`): a Kafka topic ingested into Redis, run by
  workers.kafka.KafkaIngestLoop;
- `periodic` (`PeriodicSpec`, in `PERIODIC`): a function called every interval, run by
  workers.periodic.PeriodicLoop (the outbox relay, the email re-queue, the reconciler).

`all_entries()` yields every entry (each has `.name`, `.kind` and `.description`) in the
order `runworker --list` prints them; `EXTERNAL_CONSUMERS` holds the entries that are not
stream consumers. Deployments make one service per entry (docker/compose.yaml: `relay`
for the relay, `worker-<name>` for the others; tests/deploy/test_compose.py checks it).

`workers` knows streams, never domains: handlers live in the app that reacts and are
named here by dotted path, so one grep shows every consumer, its stream, group and
handler.

A handler is `handler(event: Event) -> None`; with `batch=True` it is
`handler(events: list[Event]) -> None` and must be idempotent for the whole batch.
With `inbox=True` the runner records each event id in the same transaction as the
handler (exactly-once database effects); consumers whose writes are naturally
idempotent (a unique key, an upsert) set `inbox=False` and skip that cost.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

from django.conf import settings
from django.utils.module_loading import import_string

Kind = Literal["stream", "kafka", "periodic"]
T = TypeVar("T", "ConsumerSpec", "KafkaSpec", "PeriodicSpec")


def by_name(specs: list[T]) -> dict[str, T]:
    return {spec.name: spec for spec in specs}


@dataclass(frozen=True)
class ConsumerSpec:
    name: str
    stream: str  # a key of settings.STREAMS, or a literal stream name
    group: str
    handler: str
    batch_size: int = 100
    concurrency: int = 1  # threads in one worker process, each its own consumer in the group
    batch: bool = False
    # After a batch smaller than batch_size, wait this long before reading again, so the
    # next batch gathers more entries: fewer transactions per event under load, at the
    # cost of up to this much latency per step (Kafka's linger.ms, on the reading side).
    linger_ms: int = 0
    inbox: bool = True
    max_deliveries: int | None = None  # default settings.WORKER_MAX_DELIVERIES
    claim_idle_ms: int | None = None  # default settings.WORKER_CLAIM_IDLE_MS
    # A handler call running longer is stuck: reported, and the worker turns unhealthy
    # (workers.runner); default settings.WORKER_HANDLER_TIMEOUT_S.
    handler_timeout_s: float | None = None
    description: str = ""
    kind: Kind = "stream"

    @property
    def stream_name(self) -> str:
        return settings.STREAMS.get(self.stream, self.stream)

    @property
    def group_name(self) -> str:
        return settings.CONSUMER_GROUPS.get(self.group, self.group)

    def load_handler(self):
        return import_string(self.handler)


def saga_step(name: str, stream: str, group: str, handler: str, description: str) -> ConsumerSpec:
    """One step of the orders saga: batches of up to 50 events, lingering under load.

    No inbox: each step is idempotent by its own state (one reservation and one payment
    per order, unique in the database; settling only touches reservations still
    `reserved`; an order's status only moves forward), which tests/orders/test_idempotency.py
    shows without the runner. That saves an inbox row per event and step.
    """
    return ConsumerSpec(
        name=name,
        stream=stream,
        group=group,
        handler=handler,
        batch=True,
        batch_size=50,
        linger_ms=settings.SAGA_LINGER_MS,
        inbox=False,
        description=description,
    )


CONSUMERS: dict[str, ConsumerSpec] = by_name(
    [
        # seed 001: the event producer / consumer
        ConsumerSpec(
            name="notifications",
            stream="events",
            group="events",
            handler="notifications.handlers.handle_notification_messages",
            batch=True,
            inbox=False,  # rows are unique on the event id
            batch_size=200,
            description="NotificationStream → log and store each message",
        ),
        # seed 002: communications (campaign → notification → email)
        ConsumerSpec(
            name="campaign-fanout",
            stream="campaign",
            group="campaign",
            handler="campaigns.handlers.handle_campaign_queued",
            inbox=False,  # resumable through the campaign's fan-out cursor
            batch_size=10,
            description="campaign → recipient batches on `notification`",
        ),
        ConsumerSpec(
            name="notification-router",
            stream="notification",
            group="notification",
            handler="notifications.handlers.handle_recipient_batches",
            batch=True,
            batch_size=5,
            description="recipient batches → delivery ledger rows; email batches on `email-notification`",
        ),
        ConsumerSpec(
            name="email-sender",
            stream="email",
            group="email",
            handler="notifications.handlers.handle_email_batch",
            inbox=False,  # the delivery ledger is the dedupe
            batch_size=1,
            concurrency=settings.EMAIL_SENDER_CONCURRENCY,
            handler_timeout_s=settings.EMAIL_SENDER_HANDLER_TIMEOUT_S,  # a batch of slow SMTP sends
            description="email batches → SMTP (one persistent connection per thread)",
        ),
        ConsumerSpec(
            name="order-messages",
            stream="orders",
            group="notifications",
            handler="notifications.handlers.handle_order_finalized",
            batch_size=50,
            description="orders.order.finalized → the customer's email (seed 004's msg service)",
        ),
        # seed 003: weather request/reply
        ConsumerSpec(
            name="weather",
            stream="weather_requests",
            group="weather",
            handler="weather.handlers.handle_weather_requests",
            inbox=False,  # no DB writes; a repeated reply is discarded by the waiting web process
            batch=True,  # a batch's replies leave in one round trip
            batch_size=settings.WEATHER_BATCH_SIZE,  # requests a terminal takes at once
            concurrency=settings.WEATHER_TERMINALS,
            linger_ms=settings.WEATHER_LINGER_MS,  # under load, let a terminal's next batch gather
            description="weather-requests → forecast → weather-responses (the seed's terminals)",
        ),
        # seed 004: order / inventory / account saga (see orders/services.py for the flow)
        saga_step(
            "inventory-reserve",
            "orders",
            "inventory",
            "inventory.handlers.handle_orders_placed",
            "orders.order.placed → reserve every line or none → inventory.stock.reserved/rejected",
        ),
        saga_step(
            "accounts-charge",
            "inventory",
            "accounts",
            "accounts.handlers.handle_stock_reserved",
            "inventory.stock.reserved → charge or refuse → accounts.payment.charged/refused",
        ),
        saga_step(
            "inventory-settle",
            "accounts",
            "inventory",
            "inventory.handlers.handle_payment_outcomes",
            "accounts.payment.* → sell or release the reservation → inventory.stock.sold/released",
        ),
        saga_step(
            "orders-status",
            "inventory",
            "orders",
            "orders.handlers.handle_inventory_outcomes",
            "inventory.stock.* → order status, customer message, orders.order.finalized",
        ),
    ]
)


@dataclass(frozen=True)
class KafkaSpec:
    """A Kafka topic ingested into Redis; each setting is read when the loop starts."""

    name: str
    handler: str  # dotted path of a workers.kafka.BatchHandler
    topic_setting: str
    group_setting: str
    batch_size_setting: str
    trim_streams: tuple[str, ...] = ()  # keys of settings.STREAMS the handler writes to
    description: str = ""
    kind: Kind = "kafka"

    @property
    def topic(self) -> str:
        return getattr(settings, self.topic_setting)

    @property
    def group(self) -> str:
        return getattr(settings, self.group_setting)

    @property
    def batch_size(self) -> int:
        return getattr(settings, self.batch_size_setting)


@dataclass(frozen=True)
class PeriodicSpec:
    """`tick()` called every `interval` seconds (a number, or the name of a setting) until stopped.

    With `again_while_busy`, a tick that returned a true value (it did work, more may
    wait) is followed by the next one at once. Redis or the database being away is
    logged and retried at the next tick; any other error ends the worker.
    """

    name: str
    tick: str  # dotted path of a callable `tick() -> object`
    interval: float | str
    again_while_busy: bool = False
    description: str = ""
    kind: Kind = "periodic"

    @property
    def interval_s(self) -> float:
        return float(getattr(settings, self.interval) if isinstance(self.interval, str) else self.interval)

    def load_tick(self):
        return import_string(self.tick)


KAFKA_CONSUMERS: dict[str, KafkaSpec] = by_name(
    [
        KafkaSpec(
            name="kafka-ingest",
            handler="telemetry.handlers.handle_readings",
            topic_setting="KAFKA_TOPIC",
            group_setting="KAFKA_GROUP",
            batch_size_setting="KAFKA_INGEST_BATCH_SIZE",
            trim_streams=("battery_changes",),
            description="Kafka battery telemetry → Redis readings and `battery-changes`",
        ),
    ]
)

PERIODIC: dict[str, PeriodicSpec] = by_name(
    [
        PeriodicSpec(
            name="email-retry",
            tick="notifications.retry_loop.requeue_tick",
            interval="EMAIL_RETRY_POLL_S",
            again_while_busy=True,
            description="re-queues deferred (4xx, outage) deliveries and those whose sender died",
        ),
        PeriodicSpec(
            name="campaign-scheduler",
            tick="campaigns.services.campaigns_start_due",
            interval="CAMPAIGN_SCHEDULER_POLL_S",
            description="starts scheduled campaigns whose send_at has come (a conditional UPDATE each)",
        ),
        PeriodicSpec(
            name="reconciler",
            tick="workers.reconcile.reconcile_once",
            interval="RECONCILE_INTERVAL_S",
            description="re-drives from the database what Redis lost (RECONCILERS below)",
        ),
        PeriodicSpec(
            name="relay",
            tick="workers.publish.relay_pending",
            interval=1.0,
            description="sends outbox events whose post-commit send failed (Redis down, process died)",
        ),
    ]
)

# Every entry that does not read a Redis stream: name → spec.
EXTERNAL_CONSUMERS: dict[str, KafkaSpec | PeriodicSpec] = {
    "campaign-scheduler": PERIODIC["campaign-scheduler"],
    "email-retry": PERIODIC["email-retry"],
    "kafka-ingest": KAFKA_CONSUMERS["kafka-ingest"],
    "reconciler": PERIODIC["reconciler"],
    "relay": PERIODIC["relay"],
}

Entry = ConsumerSpec | KafkaSpec | PeriodicSpec

# What the reconciler re-drives, in this order: dotted paths of
# `redrive(*, stuck_for_s: float) -> int` in the apps' services. Each re-publishes, with the
# original event ids, what moves its entities on after they sat in a non-final state for
# `stuck_for_s` (settings.RECONCILE_AFTER_S), and returns how many it re-drove.
RECONCILERS: list[str] = [
    "orders.services.orders_redrive_stuck",
    "campaigns.services.campaigns_redrive_stuck",
    "notifications.services.deliveries_redrive_stuck",
]


def all_entries() -> Iterator[Entry]:
    """Every long-running loop: the stream consumers, then the others."""
    yield from CONSUMERS.values()
    yield from EXTERNAL_CONSUMERS.values()


def all_names() -> list[str]:
    return [entry.name for entry in all_entries()]


def get_entry(name: str) -> Entry:
    entry = CONSUMERS.get(name) or EXTERNAL_CONSUMERS.get(name)
    if entry is None:
        raise KeyError(f"unknown consumer {name!r}; known: {', '.join(sorted(all_names()))}")
    return entry


def get_consumer(name: str) -> ConsumerSpec:
    """The stream consumer `name`."""
    entry = get_entry(name)
    if not isinstance(entry, ConsumerSpec):
        raise KeyError(f"{name!r} is a {entry.kind} entry, not a stream consumer")
    return entry
