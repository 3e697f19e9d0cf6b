"""The saga end to end in-process: the real consumers (runner, Redis, PostgreSQL) driven by the test."""

import threading

import pytest

from accounts.models import Account, Payment
from inventory.models import Product, Reservation
from orders.models import CustomerMessage, Order
from orders.services import shop_reset_to_seed
from tests.helpers import wait_until
from workers.consumer import ConsumerLoop
from workers.events import Event
from workers.registry import get_consumer

from .saga import orders_final, pump_saga

pytestmark = pytest.mark.django_db(transaction=True)


def place(client, product_ids, customer_id="101") -> int:
    response = client.post("/order", {"product_ids": product_ids, "customer_id": customer_id}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"
    return int(response.json()["id"])


def stock() -> dict[int, int]:
    return dict(Product.objects.values_list("id", "stock"))


def balance(account_id: int) -> int:
    return Account.objects.get(pk=account_id).balance


SEED_STOCK = {201: 4, 202: 7, 203: 4, 204: 3, 205: 8}


def test_seed_order_completes_charges_and_takes_the_stock(api_client, redis_client):
    # given fresh seed data
    shop_reset_to_seed()
    # when Anthony orders a Denon and a Google Home Mini
    order_id = place(api_client, ["201", "204"])
    pump_saga(orders_final(order_id))
    # then the order is completed, 900 charged, one of each taken
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.total) == ("completed", 900)
    assert balance(101) == 100
    assert stock() == {**SEED_STOCK, 201: 3, 204: 2}
    assert CustomerMessage.objects.get(order=order).text == (
        f"Dear Anthony, your order {order_id} is completed: 900 was charged. Thank you!"
    )
    finalized = [
        Event.from_fields(fields)
        for _, fields in redis_client.xrange("orders")
        if fields["type"] == "orders.order.finalized"
    ]
    assert [(e.payload["order_id"], e.payload["status"], e.payload["total"]) for e in finalized] == [
        (order_id, "completed", 900)
    ]


def test_seed_order_over_the_balance_is_refused_and_the_stock_released(api_client):
    # given fresh seed data
    shop_reset_to_seed()
    # when Anthony orders 201, 204 and 205 (1200 > 1000)
    order_id = place(api_client, ["201", "204", "205"])
    pump_saga(orders_final(order_id))
    # then insufficient-fund, nothing charged, the stock is back as it was
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.total) == ("insufficient-fund", 1200)
    assert balance(101) == 1000
    assert stock() == SEED_STOCK
    assert Reservation.objects.get(order_id=order_id).status == "released"
    assert Payment.objects.get(order_id=order_id).status == "refused"
    assert CustomerMessage.objects.get(order=order).status == "insufficient-fund"


def test_seed_order_of_six_denons_is_out_of_stock_and_reserves_nothing(api_client):
    # given fresh seed data (4 Denon)
    shop_reset_to_seed()
    # when Anthony orders six
    order_id = place(api_client, ["201"] * 6)
    pump_saga(orders_final(order_id))
    # then out-of-stock (not overwritten, as the seed did), nothing reserved or charged
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.total) == ("out-of-stock", None)
    assert stock() == SEED_STOCK
    assert balance(101) == 1000
    assert Reservation.objects.get(order_id=order_id).status == "rejected"
    assert not Payment.objects.exists()
    assert CustomerMessage.objects.get(order=order).status == "out-of-stock"


def test_intermediate_status_is_payment_required_while_the_charge_is_pending(api_client):
    # given seed data and an order that inventory has reserved
    shop_reset_to_seed()
    order_id = place(api_client, ["202"], customer_id=103)
    stop = threading.Event()
    reserve = ConsumerLoop(get_consumer("inventory-reserve"), stop=stop, consumer="t", trims=False, block_ms=5)
    status = ConsumerLoop(get_consumer("orders-status"), stop=stop, consumer="t", trims=False, block_ms=5)
    # when only the reserve and status steps ran
    wait_until(lambda: reserve.run_once() or Reservation.objects.filter(order_id=order_id).exists())
    wait_until(lambda: status.run_once() or Order.objects.get(pk=order_id).status == "payment-required")
    # then the order waits for its payment, with its total known and the stock held
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.total) == ("payment-required", 600)
    assert stock()[202] == 6
    assert balance(103) == 1000
    # and when the rest of the saga runs, it completes
    pump_saga(orders_final(order_id))
    assert Order.objects.get(pk=order_id).status == "completed"
    assert balance(103) == 400
