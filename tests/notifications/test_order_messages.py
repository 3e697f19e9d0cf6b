"""Seed 004's customer messages by email: the `order-messages` consumer."""

import threading

import pytest

from notifications.models import Delivery
from workers.consumer import ConsumerLoop
from workers.events import Event
from workers.publish import publish_many
from workers.registry import get_consumer

pytestmark = pytest.mark.django_db


def finalized(order_id: int, email: str, status: str = "completed") -> Event:
    return Event(
        type="orders.order.finalized",
        payload={
            "order_id": order_id,
            "customer_id": 101,
            "customer_name": "Anthony",
            "customer_email": email,
            "status": status,
            "total": 900,
            "message": f"Order {order_id} is {status}.",
        },
    )


def run_consumer() -> None:
    loop = ConsumerLoop(get_consumer("order-messages"), stop=threading.Event(), consumer="t", trims=False, block_ms=50)
    for _ in range(3):
        loop.run_once()


def test_a_finalized_order_emails_its_customer_once(redis_client, django_capture_on_commit_callbacks):
    event = finalized(7, "anthony@example.com")
    placed = Event(type="orders.order.placed", payload={"order_id": 8})
    publish_many("orders", [placed, event, event])  # a duplicate, as a resend would be

    with django_capture_on_commit_callbacks(execute=True):
        run_consumer()

    [delivery] = Delivery.objects.all()
    assert (delivery.address, delivery.subject, delivery.body) == (
        "anthony@example.com",
        "Your order #7: completed",
        "Order 7 is completed.",
    )
    assert delivery.dedupe_key == "order:7:finalized"
    assert redis_client.xlen("email-notification") == 1


def test_a_customer_without_an_email_gets_no_delivery(redis_client):
    publish_many("orders", [finalized(9, "", status="insufficient-fund")])

    run_consumer()

    assert Delivery.objects.count() == 0
    assert redis_client.exists("email-notification") == 0
