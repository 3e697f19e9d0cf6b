"""Every stream consumer in one table: name → stream, group, handler (dotted path).

`workers` knows streams, never domains: handlers live in the app that reacts and are
named here by dotted path, so one grep shows every consumer, its stream, group and
handler. `python manage.py runworker --list` prints this table.

A handler is `handler(event: Event) -> None`; with `batch=True` it is
`handler(events: list[Event]) -> None` and must be idempotent for the whole batch.
With `inbox=True` the runner records each event id in the same transaction as the
handler (exactly-once database effects); consumers whose writes are naturally
idempotent (a unique key, an upsert) set `inbox=False` and skip that cost.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string


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
    description: str = ""
    options: dict = field(default_factory=dict)

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


CONSUMERS: dict[str, ConsumerSpec] = {
    spec.name: spec
    for spec in [
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
}

# Consumers that do not read a Redis stream (they are run by `runworker` too).
# name → dotted path of a callable `run(stop_event) -> None`.
EXTERNAL_CONSUMERS: dict[str, str] = {
    # seed 002: re-queues deferred (4xx, outage) deliveries and those whose sender died
    "email-retry": "notifications.retry_loop.run",
    # seed 000: Kafka → Redis telemetry ingest
    "kafka-ingest": "telemetry.handlers.run_kafka_ingest",
    # re-drives from the database what Redis lost (runs RECONCILERS below)
    "reconciler": "workers.reconcile.run",
}

# What the reconciler re-drives, in this order: dotted paths of
# `redrive(*, stuck_for_s: float) -> int` in the apps' services. Each re-publishes, with the
# original event ids, what moves its entities on after they sat in a non-final state for
# `stuck_for_s` (settings.RECONCILE_AFTER_S), and returns how many it re-drove.
RECONCILERS: list[str] = [
    "orders.services.orders_redrive_stuck",
    "campaigns.services.campaigns_redrive_stuck",
    "notifications.services.deliveries_redrive_stuck",
]


def get_consumer(name: str) -> ConsumerSpec:
    try:
        return CONSUMERS[name]
    except KeyError:
        raise KeyError(f"unknown consumer {name!r}; known: {', '.join(sorted(all_names()))}") from None


def all_names() -> list[str]:
    return [*CONSUMERS, *EXTERNAL_CONSUMERS]
