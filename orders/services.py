"""Orders: placing one (the start of the saga) and moving it to its outcome.

The saga, each step in its own app and consumer (see workers/registry.py):
  orders.order.placed      → inventory reserves every line or none
  inventory.stock.reserved → accounts charges the total or refuses
  accounts.payment.*       → inventory sells the reservation or releases the stock
  inventory.stock.*        → the order moves on: payment-required, then completed,
                             out-of-stock or insufficient-fund, with a customer message
                             and `orders.order.finalized` on the orders stream.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.services import accounts_reset_to_seed, payment_outcome_events
from inventory.events import STOCK_RESERVED
from inventory.services import products_reset_to_seed, stock_outcome_events
from workers.events import Event
from workers.publish import publish_on_commit

from .events import OrderFinalized, OrderPlaced
from .models import CustomerMessage, Order
from .selectors import order_references_existing

logger = logging.getLogger(__name__)

Status = Order.Status

# Which statuses an order may move to from which: stale or repeated updates (two
# consumer instances, a redelivery) never move an order backwards or out of a final status.
ALLOWED_FROM: dict[str, set[str]] = {
    Status.PAYMENT_REQUIRED: {Status.PENDING},
    Status.COMPLETED: {Status.PENDING, Status.PAYMENT_REQUIRED},
    Status.OUT_OF_STOCK: {Status.PENDING, Status.PAYMENT_REQUIRED},
    Status.INSUFFICIENT_FUND: {Status.PENDING, Status.PAYMENT_REQUIRED},
}


class OrderInvalid(Exception):
    """The order names unknown customers or products; `errors` maps field → messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was already used for a different request body."""


@dataclass(frozen=True)
class StatusUpdate:
    order_id: int
    status: str
    total: int | None = None


def _request_hash(customer_id: int, product_ids: list[int]) -> str:
    body = json.dumps({"customer_id": customer_id, "product_ids": product_ids}, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _replay(order: Order, request_hash: str) -> Order:
    if order.request_hash != request_hash:
        raise IdempotencyKeyReused(f"Idempotency-Key already used for order {order.pk} with a different body.")
    return order


def order_place(
    *, customer_id: int, product_ids: list[int], user=None, idempotency_key: str | None = None
) -> tuple[Order, bool]:
    """Place an order (status pending) and start the saga; return (order, created).

    With an `idempotency_key` (scoped to the user) the same body returns the order
    placed the first time (created=False); a different body raises IdempotencyKeyReused.
    Unknown customer or product ids raise OrderInvalid and nothing is written.
    """
    request_hash = _request_hash(customer_id, product_ids)
    if idempotency_key:
        existing = Order.objects.filter(created_by=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, request_hash), False
    errors: dict[str, list[str]] = {}
    customer_exists, products_existing = order_references_existing(customer_id=customer_id, product_ids=product_ids)
    if not customer_exists:
        errors["customer_id"] = [f"Unknown customer {customer_id}."]
    unknown = sorted(set(product_ids) - products_existing)
    if unknown:
        errors["product_ids"] = [f"Unknown products: {', '.join(map(str, unknown))}."]
    if errors:
        raise OrderInvalid(errors)
    lines: dict[str, int] = {}
    for pid in product_ids:
        lines[str(pid)] = lines.get(str(pid), 0) + 1
    try:
        with transaction.atomic():
            order = Order.objects.create(
                customer_id=customer_id,
                product_ids=product_ids,
                created_by=user,
                idempotency_key=idempotency_key or None,
                request_hash=request_hash,
            )
            publish_on_commit(
                "orders",
                OrderPlaced(
                    order_id=order.pk, customer_id=customer_id, lines={int(p): q for p, q in lines.items()}
                ).event(),
            )
    except IntegrityError:
        # Two requests with the same key raced; the other one won.
        existing = Order.objects.filter(created_by=user, idempotency_key=idempotency_key).first()
        if not idempotency_key or existing is None:
            raise
        return _replay(existing, request_hash), False
    return order, True


def customer_message_text(order: Order) -> str:
    name = order.customer.name
    if order.status == Status.COMPLETED:
        return f"Dear {name}, your order {order.pk} is completed: {order.total} was charged. Thank you!"
    if order.status == Status.OUT_OF_STOCK:
        return f"Dear {name}, we are sorry: order {order.pk} is out of stock. Nothing was charged."
    return (
        f"Dear {name}, order {order.pk} was not completed: your balance does not cover its total of "
        f"{order.total}. Nothing was charged."
    )


@transaction.atomic
def order_status_apply(*, updates: list[StatusUpdate]) -> list[Order]:
    """Move orders along the saga; return the orders that reached a final status.

    Updates that would move an order backwards (a stale or repeated event) are ignored.
    A final status stores the customer's message and emits `orders.order.finalized`.
    """
    ids = sorted({u.order_id for u in updates})
    orders = {
        o.pk: o
        for o in Order.objects.select_for_update(of=("self",), no_key=True)
        .select_related("customer")
        .filter(pk__in=ids)
        .order_by("pk")
    }
    now = timezone.now()
    changed: dict[int, Order] = {}
    finalized: list[Order] = []
    for update in updates:
        order = orders.get(update.order_id)
        if order is None:
            logger.warning("status %s for unknown order %s ignored", update.status, update.order_id)
            continue
        if order.status not in ALLOWED_FROM[update.status]:
            continue
        order.status = update.status
        if update.total is not None:
            order.total = update.total
        order.updated_at = now
        if order.is_final:
            order.finalized_at = now
            finalized.append(order)
        changed[order.pk] = order
    if not changed:
        return []
    _orders_update(list(changed.values()), now)
    messages = [
        CustomerMessage(
            order=order, customer_id=order.customer_id, status=order.status, text=customer_message_text(order)
        )
        for order in finalized
    ]
    CustomerMessage.objects.bulk_create(messages)
    # The notification pipeline emails the customer from this event when
    # `customer_email` is set (a consumer of the orders stream; see the README of orders).
    publish_on_commit(
        "orders",
        [
            OrderFinalized(
                order_id=message.order.pk,
                customer_id=message.order.customer_id,
                customer_name=message.order.customer.name,
                customer_email=message.order.customer.email,
                status=message.status,
                total=message.order.total,
                message=message.text,
            ).event()
            for message in messages
        ],
    )
    return finalized


def _orders_update(orders: list[Order], now) -> None:
    """Store the new status, total and finalized_at of each order in one UPDATE … FROM
    (VALUES …): one statement per batch, where grouping by (status, total) took one per
    distinct total and bulk_update's per-row CASE costs more to build than it saves."""
    meta = Order._meta
    table = connection.ops.quote_name(meta.db_table)
    stamp = meta.get_field("updated_at").get_db_prep_save
    params: list[Any] = [stamp(now, connection)]
    for order in orders:
        finalized_at = stamp(order.finalized_at, connection) if order.finalized_at else None
        params += [order.pk, order.status, order.total, finalized_at]
    # The first row casts its columns: PostgreSQL types a VALUES list from its first row,
    # and a NULL there would make the column text.
    first = "(%s, %s, CAST(%s AS bigint), CAST(%s AS timestamp with time zone))"
    if connection.vendor != "postgresql":
        first = "(%s, %s, %s, %s)"
    values = ", ".join([first] + ["(%s, %s, %s, %s)"] * (len(orders) - 1))
    sql = (
        # The table name from the model, quoted; every value is a bound parameter.
        f"UPDATE {table} SET status = v.column2, total = v.column3, finalized_at = v.column4, updated_at = %s "  # noqa: S608
        f"FROM (VALUES {values}) AS v WHERE {table}.id = v.column1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@transaction.atomic
def shop_reset_to_seed() -> None:
    """Seed 004's `init-data`: products and accounts back to the seed values (orders are kept)."""
    products_reset_to_seed()
    accounts_reset_to_seed()


def _order_placed_event(order: Order) -> Event:
    lines: dict[int, int] = {}
    for pid in order.product_ids:
        lines[int(pid)] = lines.get(int(pid), 0) + 1
    return OrderPlaced(order_id=order.pk, customer_id=order.customer_id, lines=lines).event()


@transaction.atomic
def orders_redrive_stuck(*, stuck_for_s: float, limit: int = 500) -> int:
    """Resume the saga of orders left `pending`/`payment-required` for `stuck_for_s`
    (Redis lost the event that would move them on); return how many were re-driven.

    Each order resumes at the step it reached, by emitting again, with its original id
    (Event.keyed), the last event of that step: no reservation yet → `orders.order.placed`;
    reserved and charged or refused → that `accounts.payment.*`; reserved, no payment →
    `inventory.stock.reserved`; settled or rejected → that `inventory.stock.*`. Repeating
    `orders.order.placed` alone would not do: a step that finds its work done emits
    nothing. Every step acts by its own state, so re-driving an order that was in fact
    moving does nothing twice. An order is re-driven at most once per `stuck_for_s`.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=stuck_for_s)
    orders = list(
        Order.objects.select_for_update(skip_locked=True, of=("self",), no_key=True)
        .filter(status__in=[Status.PENDING, Status.PAYMENT_REQUIRED], updated_at__lt=cutoff)
        .order_by("pk")[:limit]
    )
    if not orders:
        return 0
    ids = [order.pk for order in orders]
    stock = stock_outcome_events(order_ids=ids)
    payments = payment_outcome_events(order_ids=ids)
    by_stream: dict[str, list[Event]] = {"orders": [], "inventory": [], "accounts": []}
    for order in orders:
        reservation = stock.get(order.pk)
        if reservation is None:
            by_stream["orders"].append(_order_placed_event(order))
        elif reservation.type == STOCK_RESERVED and order.pk in payments:
            by_stream["accounts"].append(payments[order.pk])
        else:
            by_stream["inventory"].append(reservation)
    for stream, events in by_stream.items():
        publish_on_commit(stream, events)
    Order.objects.filter(pk__in=ids).update(updated_at=now)
    logger.warning(
        "re-drove %d order(s) stuck for over %.0fs: %s",
        len(ids),
        stuck_for_s,
        ", ".join(f"{len(events)} via {stream}" for stream, events in by_stream.items() if events),
    )
    return len(ids)
