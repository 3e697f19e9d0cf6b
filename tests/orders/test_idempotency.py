"""Every saga step is idempotent: a redelivered or repeated event never reserves, charges or releases twice."""

import uuid

import pytest

from accounts.handlers import handle_stock_reserved
from accounts.models import Account, Payment
from inventory.handlers import handle_orders_placed, handle_payment_outcomes
from inventory.models import Product, Reservation
from orders.handlers import handle_inventory_outcomes
from orders.models import CustomerMessage, Order
from orders.services import shop_reset_to_seed
from workers.events import Event
from workers.handling import PermanentError
from workers.models import OutboxEvent

from .saga import orders_final, pump_saga


def event(event_type: str, **payload) -> Event:
    # A fresh envelope id each time: what a buggy producer or a replay would send.
    return Event(type=event_type, payload=payload, id=str(uuid.uuid4()))


def outbox_types() -> list[str]:
    return [row.fields["type"] for row in OutboxEvent.objects.order_by("pk")]


@pytest.mark.django_db
def test_order_placed_twice_reserves_once():
    shop_reset_to_seed()
    placed = dict(order_id=7, customer_id=101, lines={"201": 2, "204": 1})
    handle_orders_placed([event("orders.order.placed", **placed)])
    handle_orders_placed([event("orders.order.placed", **placed), event("orders.order.placed", **placed)])
    assert dict(Product.objects.filter(pk__in=[201, 204]).values_list("id", "stock")) == {201: 2, 204: 2}
    assert list(Reservation.objects.values_list("order_id", "status", "amount")) == [(7, "reserved", 1700)]
    assert outbox_types() == ["inventory.stock.reserved"]


@pytest.mark.django_db
def test_stock_reserved_twice_charges_once():
    shop_reset_to_seed()
    reserved = dict(order_id=7, customer_id=101, lines={"201": 1}, amount=800)
    handle_stock_reserved([event("inventory.stock.reserved", **reserved)])
    handle_stock_reserved([event("inventory.stock.reserved", **reserved)])
    assert Account.objects.get(pk=101).balance == 200
    assert list(Payment.objects.values_list("order_id", "status", "amount")) == [(7, "charged", 800)]
    assert outbox_types() == ["accounts.payment.charged"]


@pytest.mark.django_db
def test_payment_refused_twice_releases_once():
    shop_reset_to_seed()
    handle_orders_placed([event("orders.order.placed", order_id=7, customer_id=102, lines={"202": 3})])
    assert Product.objects.get(pk=202).stock == 4
    refused = dict(order_id=7, customer_id=102, amount=1800, balance=100)
    handle_payment_outcomes([event("accounts.payment.refused", **refused)])
    handle_payment_outcomes(
        [event("accounts.payment.refused", **refused), event("accounts.payment.charged", **refused)]
    )
    assert Product.objects.get(pk=202).stock == 7
    assert Reservation.objects.get(order_id=7).status == "released"
    assert outbox_types() == ["inventory.stock.reserved", "inventory.stock.released"]


@pytest.mark.django_db
def test_order_status_never_moves_back_and_the_message_is_sent_once():
    shop_reset_to_seed()
    order = Order.objects.create(customer_id=101, product_ids=[201])
    # sold arrives before reserved (two orders-status instances), then sold again
    handle_inventory_outcomes([event("inventory.stock.sold", order_id=order.pk, customer_id=101, amount=800)])
    handle_inventory_outcomes([event("inventory.stock.reserved", order_id=order.pk, customer_id=101, amount=800)])
    handle_inventory_outcomes([event("inventory.stock.sold", order_id=order.pk, customer_id=101, amount=800)])
    order.refresh_from_db()
    assert (order.status, order.total) == ("completed", 800)
    assert CustomerMessage.objects.filter(order=order).count() == 1
    assert outbox_types() == ["orders.order.finalized"]


@pytest.mark.django_db
def test_malformed_saga_events_are_permanent_errors_and_change_nothing():
    shop_reset_to_seed()
    with pytest.raises(PermanentError):
        handle_orders_placed([event("orders.order.placed", order_id=7, customer_id=101, lines={})])
    with pytest.raises(PermanentError):
        handle_stock_reserved([event("inventory.stock.reserved", order_id="x", customer_id=101, amount=5)])
    with pytest.raises(PermanentError):
        handle_inventory_outcomes([event("inventory.stock.sold", customer_id=101)])
    assert not Reservation.objects.exists()
    assert not Payment.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_entry_redelivered_by_the_stream_is_applied_once(api_client, redis_client):
    # given an order whose placed event the outbox relay sent a second time (same envelope)
    shop_reset_to_seed()
    response = api_client.post("/order", {"product_ids": ["204"], "customer_id": "102"}, format="json")
    order_id = int(response.json()["id"])
    ((_, fields),) = redis_client.xrange("orders")
    redis_client.xadd("orders", fields)
    # when the saga runs
    pump_saga(orders_final(order_id))
    # then one unit and one charge were taken
    assert Order.objects.get(pk=order_id).status == "completed"
    assert Product.objects.get(pk=204).stock == 2
    assert Account.objects.get(pk=102).balance == 0
    assert Payment.objects.count() == 1
    assert redis_client.xpending("orders", "inventory")["pending"] == 0
