import pytest
from django.db import transaction

from notifications.handlers import handle_email_batch
from notifications.models import Delivery
from notifications.services import notification_send
from users.models import Recipient
from workers.events import Event

pytestmark = pytest.mark.django_db(transaction=True)


def _queued_batches(redis_client):
    return [Event.from_fields(fields) for _, fields in redis_client.xrange("email-notification")]


def test_notification_send_delivers_once_per_dedupe_key(smtp_server, redis_client):
    # given
    customer = Recipient.objects.create(username="anthony", name="Anthony", email="anthony@example.com")

    # when: the same notification twice (a redelivered order event)
    with transaction.atomic():
        first = notification_send(recipient=customer, subject="Order 7", body="Completed.", dedupe_key="order:7")
    with transaction.atomic():
        second = notification_send(recipient=customer, subject="Order 7", body="Completed.", dedupe_key="order:7")
    for event in _queued_batches(redis_client):
        handle_email_batch(event)
        handle_email_batch(event)  # redelivery of the entry

    # then
    assert second.pk == first.pk
    assert len(_queued_batches(redis_client)) == 1
    [mail] = smtp_server.messages
    assert (mail.rcpt_tos, mail.subject, mail.body.strip()) == (
        ("anthony@example.com",),
        "Order 7",
        "Completed.",
    )
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.smtp_code) == ("sent", 1, 250)


def test_notification_send_rolled_back_sends_nothing(smtp_server, redis_client):
    # when
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012 (the failure must follow the send inside one transaction)
        notification_send(email="x@example.com", subject="s", body="b", dedupe_key="k")
        raise RuntimeError("the caller's transaction fails")

    # then
    assert Delivery.objects.count() == 0
    assert redis_client.exists("email-notification") == 0


def test_sms_is_recorded_as_not_configured(redis_client):
    # when
    delivery = notification_send(channel="sms", email=None, subject="s", body="b", dedupe_key="sms:1")

    # then
    assert (delivery.status, delivery.reason) == ("not_configured", "no sms provider is configured")
    assert redis_client.exists("email-notification") == 0
