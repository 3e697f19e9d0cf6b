"""300 concurrent orders against scarce stock and small balances, two instances of every saga
consumer in worker subprocesses (PostgreSQL, real Redis) — and the same with a kill -9."""

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from rest_framework.test import APIClient

from accounts.models import Payment
from inventory.models import Reservation
from orders.models import CustomerMessage, Order
from tests.helpers import wait_until

from .saga import SAGA_CONSUMERS, assert_saga_invariants, set_shop

pytestmark = pytest.mark.django_db(transaction=True)

PRODUCTS = {301: (100, 40), 302: (250, 25), 303: (400, 15), 304: (50, 60), 305: (700, 10)}
ACCOUNTS = {1000 + i: 300 + 150 * (i % 8) for i in range(20)}
ORDERS = 300
WORKER_ENV = {"WORKER_CLAIM_IDLE_MS": "1000", "WORKER_BLOCK_MS": "200", "OUTBOX_RELAY_GRACE_S": "1"}


def order_bodies(seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "product_ids": [str(p) for p in rng.choices(list(PRODUCTS), k=rng.randint(1, 3))],
            "customer_id": str(rng.choice(list(ACCOUNTS))),
        }
        for _ in range(ORDERS)
    ]


def place_concurrently(user, bodies: list[dict], threads: int = 6) -> list[int]:
    local = threading.local()

    def place(body: dict) -> int:
        if not hasattr(local, "client"):
            local.client = APIClient()
            local.client.force_authenticate(user)
        response = local.client.post("/order", body, format="json")
        assert response.status_code == 200, response.content
        return int(response.json()["id"])

    def place_and_close(chunk: list[dict]) -> list[int]:
        try:
            return [place(body) for body in chunk]
        finally:
            connections.close_all()

    chunks = [bodies[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return [order_id for ids in pool.map(place_and_close, chunks) for order_id in ids]


def final_count() -> int:
    return Order.objects.filter(status__in=Order.FINAL_STATUSES).count()


def start_saga_worker(worker_process):
    return worker_process("runworker", *SAGA_CONSUMERS, env=WORKER_ENV)


def assert_everything_consistent(order_ids: list[int]) -> Counter:
    statuses = assert_saga_invariants(products=PRODUCTS, accounts=ACCOUNTS)
    assert sum(statuses.values()) == len(order_ids) == ORDERS
    reservations = Counter(Reservation.objects.values_list("status", flat=True))
    payments = Counter(Payment.objects.values_list("status", flat=True))
    assert reservations == {
        "sold": statuses["completed"],
        "released": statuses["insufficient-fund"],
        "rejected": statuses["out-of-stock"],
    }
    assert payments == {"charged": statuses["completed"], "refused": statuses["insufficient-fund"]}
    assert CustomerMessage.objects.count() == ORDERS
    return statuses


def test_300_concurrent_orders_with_two_instances_of_each_consumer(api_user, worker_process):
    # given scarce stock, small balances and two instances of every saga consumer
    set_shop(products=PRODUCTS, accounts=ACCOUNTS)
    workers = [start_saga_worker(worker_process) for _ in range(2)]
    # when 300 orders are placed concurrently
    order_ids = place_concurrently(api_user, order_bodies(seed=4))
    # then every order reaches a final status and the books balance
    wait_until(lambda: final_count() == ORDERS, timeout=90, interval=0.5, message="every order final")
    statuses = assert_everything_consistent(order_ids)
    assert statuses["completed"] > 0 and statuses["out-of-stock"] > 0 and statuses["insufficient-fund"] > 0
    assert all(w.running for w in workers)


def test_kill_9_of_a_saga_worker_mid_load_then_a_restart_loses_nothing(api_user, worker_process):
    # given the same load, two saga workers and the outbox relay
    set_shop(products=PRODUCTS, accounts=ACCOUNTS)
    victim, survivor = start_saga_worker(worker_process), start_saga_worker(worker_process)
    worker_process("relay_outbox", "--interval", "0.5", env=WORKER_ENV)
    placed: list[int] = []
    placing = threading.Thread(target=lambda: placed.extend(place_concurrently(api_user, order_bodies(seed=44))))
    placing.start()
    # when one worker is killed -9 while orders are in flight, and a new one started
    wait_until(lambda: final_count() >= 30, timeout=60, interval=0.05, message="the saga under way")
    victim.kill()
    start_saga_worker(worker_process)
    placing.join()
    # then no order is stuck and the books still balance
    wait_until(lambda: final_count() == ORDERS, timeout=90, interval=0.5, message="every order final")
    assert_everything_consistent(placed)
    assert survivor.running
