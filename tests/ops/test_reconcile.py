"""The reconciler's order re-drive, in-process against the real saga consumers and Redis:
re-driving is harmless while an order moves, and finishes one whose events Redis lost."""

import threading

import pytest

from accounts.models import Account, Payment
from inventory.models import Product, Reservation
from orders.models import Order
from orders.services import order_place, orders_redrive_stuck, shop_reset_to_seed
from tests.helpers import wait_until
from tests.orders.saga import orders_final, pump_saga
from workers.consumer import ConsumerLoop
from workers.reconcile import reconcile_once
from workers.registry import get_consumer

pytestmark = pytest.mark.django_db(transaction=True)


def test_re_driving_an_order_that_is_moving_changes_nothing_twice(redis_client):
    # given an order just placed (its event on the orders stream)
    shop_reset_to_seed()
    order, _ = order_place(customer_id=101, product_ids=[201, 204])
    # when it is re-driven before, and after, the saga ran
    assert orders_redrive_stuck(stuck_for_s=0) == 1
    pump_saga(orders_final(order.pk))
    again = orders_redrive_stuck(stuck_for_s=0)
    # then the copy carried the original event id, and the order was charged once
    [(_, first), (_, copy)] = redis_client.xrange("orders", count=2)
    assert (copy["id"], copy["type"]) == (first["id"], "orders.order.placed")
    assert again == 0
    order.refresh_from_db()
    assert (order.status, order.total) == ("completed", 900)
    assert Account.objects.get(pk=101).balance == 100
    assert list(Payment.objects.values_list("order_id", "status")) == [(order.pk, "charged")]
    assert dict(Product.objects.filter(pk__in=[201, 204]).values_list("id", "stock")) == {201: 3, 204: 2}


def test_an_order_whose_reservation_event_redis_lost_is_finished_by_the_reconciler(redis_client, settings):
    # given an order whose stock was reserved, then Redis lost the `inventory.stock.reserved`
    shop_reset_to_seed()
    order, _ = order_place(customer_id=101, product_ids=[201])
    reserve = ConsumerLoop(get_consumer("inventory-reserve"), stop=threading.Event(), consumer="t", block_ms=5)
    wait_until(lambda: reserve.run_once() or Reservation.objects.exists(), timeout=10)
    redis_client.flushdb()
    # when the reconciler runs a round (nothing would move the order otherwise)
    settings.RECONCILE_AFTER_S = 0
    redriven = reconcile_once()
    # then the order resumes at the charge and completes, charged once
    assert redriven["orders.services.orders_redrive_stuck"] == 1
    assert redis_client.xrange("orders") == []
    [(_, resent)] = redis_client.xrange("inventory")
    assert resent["type"] == "inventory.stock.reserved"
    pump_saga(orders_final(order.pk))
    assert Order.objects.get(pk=order.pk).status == "completed"
    assert Account.objects.get(pk=101).balance == 200
    assert Payment.objects.count() == 1
