"""Stock: reserve every line of an order or none, then sell or release the reservation.

Both steps run in batches inside one transaction each: the products of the whole batch are
locked first, in id order, so two instances reserving overlapping products queue instead
of deadlocking; the final decrement is still a conditional update, and the database
refuses negative stock. Both are idempotent by their own state (one reservation per
order, unique; settling only touches reservations still `reserved`), which is why their
consumers run without the inbox.
"""

import logging
from collections import Counter
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from workers.events import Event
from workers.publish import publish_on_commit

from .events import STOCK_REJECTED, STOCK_RELEASED, STOCK_RESERVED, STOCK_SOLD, StockOutcome
from .models import Product, Reservation

logger = logging.getLogger(__name__)

# Seed 004's catalogue, with product 204 defined once (the seed defined it twice).
SEED_PRODUCTS = [
    (201, "Denon Speakers", 800, 4),
    (202, "Sonos Speakers", 600, 7),
    (203, "AudioPro Speakers", 400, 4),
    (204, "Google Home Mini", 100, 3),
    (205, "Xiaomi Soundbar", 300, 8),
]


class StockChanged(Exception):
    """A locked product's stock changed under us: roll back and let the consumer retry."""


@dataclass(frozen=True)
class OrderToReserve:
    order_id: int
    customer_id: int
    lines: dict[int, int]  # product id → quantity


@dataclass(frozen=True)
class PaymentOutcome:
    order_id: int
    charged: bool


def _lock_products(ids) -> dict[int, Product]:
    """Lock the rows in id order (the one order every writer uses)."""
    return {p.pk: p for p in Product.objects.select_for_update(no_key=True).filter(pk__in=sorted(ids)).order_by("pk")}


@transaction.atomic
def stock_reserve(*, orders: list[OrderToReserve]) -> dict[int, str]:
    """Reserve every line of each order or none; return order id → reservation status.

    An order that already has a reservation (a redelivery) is skipped. Emits
    `inventory.stock.reserved` (with the amount to charge) or `inventory.stock.rejected`.
    """
    existing = set(
        Reservation.objects.filter(order_id__in=[o.order_id for o in orders]).values_list("order_id", flat=True)
    )
    todo: dict[int, OrderToReserve] = {}
    for order in orders:
        if order.order_id not in existing:
            todo.setdefault(order.order_id, order)
    if not todo:
        return {}
    products = _lock_products({pid for order in todo.values() for pid in order.lines})
    available = {pid: product.stock for pid, product in products.items()}
    taken: Counter[int] = Counter()
    reservations: list[Reservation] = []
    events: list[Event] = []
    for order in todo.values():
        lines = {str(pid): qty for pid, qty in sorted(order.lines.items())}
        unknown = [pid for pid in sorted(order.lines) if pid not in products]
        short = [pid for pid, qty in sorted(order.lines.items()) if pid in products and available[pid] < qty]
        if unknown or short:
            reason = "; ".join(
                part
                for part in (
                    f"unknown products {unknown}" if unknown else "",
                    f"not enough stock of {short}" if short else "",
                )
                if part
            )
            reservations.append(
                Reservation(
                    order_id=order.order_id,
                    customer_id=order.customer_id,
                    lines=lines,
                    status=Reservation.Status.REJECTED,
                    reason=reason,
                )
            )
            events.append(
                StockOutcome(
                    type=STOCK_REJECTED, order_id=order.order_id, customer_id=order.customer_id, reason=reason
                ).event()
            )
            continue
        for pid, qty in order.lines.items():
            available[pid] -= qty
            taken[pid] += qty
        amount = sum(products[pid].price * qty for pid, qty in order.lines.items())
        reservations.append(
            Reservation(
                order_id=order.order_id,
                customer_id=order.customer_id,
                lines=lines,
                amount=amount,
                status=Reservation.Status.RESERVED,
            )
        )
        events.append(
            StockOutcome(
                type=STOCK_RESERVED, order_id=order.order_id, customer_id=order.customer_id, lines=lines, amount=amount
            ).event()
        )
    if taken:
        updated = _take_stock(taken)
        if updated != len(taken):
            raise StockChanged(f"stock of {dict(taken)} changed while locked ({updated} of {len(taken)} taken)")
    Reservation.objects.bulk_create(reservations)
    publish_on_commit("inventory", events)
    return {r.order_id: r.status for r in reservations}


def _take_stock(taken: Counter[int]) -> int:
    """Decrement every product of `taken` by its quantity in one UPDATE, each only if its
    stock covers it; return how many products were decremented. (One statement per
    product would cost a round trip and an ORM query each, in every reserving batch.)"""
    table = connection.ops.quote_name(Product._meta.db_table)
    now = Product._meta.get_field("updated_at").get_db_prep_save(timezone.now(), connection)
    values = ", ".join(["(%s, %s)"] * len(taken))
    sql = (
        # The table name from the model, quoted; every value is a bound parameter.
        f"UPDATE {table} SET stock = {table}.stock - v.column2, updated_at = %s "  # noqa: S608
        f"FROM (VALUES {values}) AS v WHERE {table}.id = v.column1 AND {table}.stock >= v.column2"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, *(x for pid in sorted(taken) for x in (pid, taken[pid]))])
        return cursor.rowcount


@transaction.atomic
def stock_settle(*, outcomes: list[PaymentOutcome]) -> dict[int, str]:
    """Sell the reservation of each charged order, release the stock of each refused one.

    Only reservations still `reserved` change, so a repeated outcome does nothing. Emits
    `inventory.stock.sold` or `inventory.stock.released`; returns order id → new status.
    """
    by_order = {o.order_id: o for o in outcomes}
    reservations = list(
        Reservation.objects.select_for_update(no_key=True)
        .filter(order_id__in=sorted(by_order), status=Reservation.Status.RESERVED)
        .order_by("order_id")
    )
    if not reservations:
        return {}
    now = timezone.now()
    released: Counter[int] = Counter()
    events: list[Event] = []
    for reservation in reservations:
        charged = by_order[reservation.order_id].charged
        reservation.status = Reservation.Status.SOLD if charged else Reservation.Status.RELEASED
        reservation.updated_at = now
        if not charged:
            for pid, qty in reservation.lines.items():
                released[int(pid)] += qty
        events.append(
            StockOutcome(
                type=STOCK_SOLD if charged else STOCK_RELEASED,
                order_id=reservation.order_id,
                customer_id=reservation.customer_id,
                amount=reservation.amount,
            ).event()
        )
    if released:
        _lock_products(released)
        for pid in sorted(released):
            if not Product.objects.filter(pk=pid).update(stock=F("stock") + released[pid], updated_at=now):
                logger.warning("product %s vanished; %d released unit(s) dropped", pid, released[pid])
    for new_status in (Reservation.Status.SOLD, Reservation.Status.RELEASED):
        pks = [r.pk for r in reservations if r.status == new_status]
        if pks:
            Reservation.objects.filter(pk__in=pks).update(status=new_status, updated_at=now)
    publish_on_commit("inventory", events)
    return {r.order_id: r.status for r in reservations}


@transaction.atomic
def products_reset_to_seed() -> None:
    """Put the seed's products back with their seed stock and prices."""
    for pid, name, price, stock in SEED_PRODUCTS:
        Product.objects.update_or_create(id=pid, defaults={"name": name, "price": price, "stock": stock})


def stock_outcome_events(*, order_ids: list[int]) -> dict[int, Event]:
    """The event each order's reservation emitted for the state it is in now, rebuilt with
    its original id (Event.keyed on type and order): to re-drive a saga whose event Redis
    lost (orders.services.orders_redrive_stuck). Consumers of the copy act by state, so a
    copy of an event that was not lost changes nothing."""
    events: dict[int, Event] = {}
    for r in Reservation.objects.filter(order_id__in=order_ids):
        order, customer = r.order_id, r.customer_id
        if r.status == Reservation.Status.RESERVED:
            outcome = StockOutcome(STOCK_RESERVED, order, customer, amount=r.amount, lines=r.lines)
        elif r.status == Reservation.Status.REJECTED:
            outcome = StockOutcome(STOCK_REJECTED, order, customer, reason=r.reason)
        else:
            event_type = STOCK_SOLD if r.status == Reservation.Status.SOLD else STOCK_RELEASED
            outcome = StockOutcome(event_type, order, customer, amount=r.amount)
        events[r.order_id] = outcome.event()
    return events
