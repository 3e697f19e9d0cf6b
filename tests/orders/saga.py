"""Helpers for the saga tests: run the real consumers in-process, seed data, check invariants."""

from __future__ import annotations

import threading
from collections import Counter

from accounts.models import Account
from inventory.models import Product
from orders.models import Order
from tests.helpers import wait_until
from workers.consumer import ConsumerLoop
from workers.registry import get_consumer

SAGA_CONSUMERS = ["inventory-reserve", "accounts-charge", "inventory-settle", "orders-status"]


def pump_saga(until, timeout: float = 20.0):
    """Run each saga consumer's loop (the real runner, real Redis) until `until()` is truthy."""
    stop = threading.Event()
    loops = [
        ConsumerLoop(get_consumer(name), stop=stop, consumer=f"test-{name}", trims=False, block_ms=5)
        for name in SAGA_CONSUMERS
    ]

    def step():
        for loop in loops:
            loop.run_once()
        return until()

    return wait_until(step, timeout=timeout, interval=0, message=getattr(until, "__name__", "the saga"))


def orders_final(*order_ids: int):
    def all_final() -> bool:
        statuses = dict(Order.objects.filter(pk__in=order_ids).values_list("pk", "status"))
        return len(statuses) == len(order_ids) and all(s in Order.FINAL_STATUSES for s in statuses.values())

    return all_final


def set_shop(*, products: dict[int, tuple[int, int]], accounts: dict[int, int]) -> None:
    """Products {id: (price, stock)} and accounts {id: balance}, replacing the seed's."""
    Order.objects.all().delete()
    Product.objects.all().delete()
    Account.objects.all().delete()
    Product.objects.bulk_create(
        [Product(id=pid, name=f"product {pid}", price=price, stock=stock) for pid, (price, stock) in products.items()]
    )
    Account.objects.bulk_create([Account(id=aid, name=f"customer {aid}", balance=b) for aid, b in accounts.items()])


def assert_saga_invariants(*, products: dict[int, tuple[int, int]], accounts: dict[int, int]) -> Counter:
    """Every order final; nothing negative; stock sold and money charged match the completed orders."""
    orders = list(Order.objects.all())
    statuses = Counter(o.status for o in orders)
    assert set(statuses) <= set(Order.FINAL_STATUSES), statuses
    stock = dict(Product.objects.values_list("id", "stock"))
    balance = dict(Account.objects.values_list("id", "balance"))
    assert all(v >= 0 for v in stock.values()), stock
    assert all(v >= 0 for v in balance.values()), balance
    completed = [o for o in orders if o.status == Order.Status.COMPLETED]
    sold = Counter(pid for o in completed for pid in o.product_ids)
    assert {pid: products[pid][1] - stock[pid] for pid in products} == {pid: sold.get(pid, 0) for pid in products}
    for order in completed:
        assert order.total == sum(products[pid][0] for pid in order.product_ids)
    charged = Counter()
    for order in completed:
        charged[order.customer_id] += order.total
    assert {aid: accounts[aid] - balance[aid] for aid in accounts} == {aid: charged.get(aid, 0) for aid in accounts}
    return statuses
