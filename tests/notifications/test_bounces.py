"""Bounces that arrive after the mail was sent: RFC 3464 DSNs in a Maildir
(`manage.py process_bounces`) and the signed bounce webhook. Each marks the delivery
`bounced`, suppresses the address and counts the bounce on the campaign, once."""

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from campaigns.models import Campaign
from notifications.models import Delivery, Suppression
from notifications.services import message_id_for
from users.models import Recipient

pytestmark = pytest.mark.django_db

SECRET = "webhook-secret-for-tests"


def _sent_delivery() -> Delivery:
    campaign = Campaign.objects.create(
        name="Sent",
        subject="Hi",
        body="Hello",
        from_email="test@test.com",
        channels=["email"],
        status=Campaign.Status.COMPLETED,
        recipients_count=1,
        sent_count=1,
    )
    recipient = Recipient.objects.create(username="ada", name="Ada", email="ada@example.com")
    return Delivery.objects.create(
        campaign=campaign,
        recipient=recipient,
        address=recipient.email,
        status=Delivery.Status.SENT,
        message_id=message_id_for(campaign_id=campaign.pk, recipient_id=recipient.pk),
    )


def _dsn(*, recipient: str, status: str, message_id: str) -> bytes:
    """A delivery status notification as Postfix writes one (multipart/report)."""
    return (
        "From: MAILER-DAEMON@mx.example.com\r\n"
        "To: test@test.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"\r\n'
        "\r\n"
        "--B0UND\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "--B0UND\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {'failed' if status.startswith('5') else 'delayed'}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {status[0]}50 {status} <{recipient}>: Recipient address rejected\r\n"
        "--B0UND\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        "From: test@test.com\r\n"
        f"To: {recipient}\r\n"
        "Subject: Hi\r\n"
        f"Message-ID: {message_id}\r\n"
        "--B0UND--\r\n"
    ).encode()


def _maildir(root: Path, messages: dict[str, bytes]) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    for name, raw in messages.items():
        (root / "new" / name).write_bytes(raw)
    return root


def _state(delivery: Delivery) -> tuple:
    delivery.refresh_from_db()
    campaign = Campaign.objects.get(pk=delivery.campaign_id)
    suppressions = sorted(Suppression.objects.values_list("address", "reason"))
    return delivery.status, campaign.sent_count, campaign.bounced_count, suppressions


def test_a_dsn_in_the_maildir_marks_the_delivery_bounced_and_suppresses_once(tmp_path):
    # given: a hard bounce (5.1.1) for our mail, and a delay notice (4.4.1) for it
    delivery = _sent_delivery()
    maildir = _maildir(
        tmp_path / "bounces",
        {
            "1700000000.1.mx": _dsn(recipient="ada@example.com", status="5.1.1", message_id=delivery.message_id),
            "1700000000.2.mx": _dsn(recipient="ada@example.com", status="4.4.1", message_id=delivery.message_id),
            "1700000000.3.mx": b"From: someone@example.com\r\nSubject: re: Hi\r\n\r\nThanks!\r\n",
        },
    )

    # when
    call_command("process_bounces", maildir=str(maildir))

    # then: bounced, suppressed, counted (sent_count still counts what the server accepted)
    assert _state(delivery) == ("bounced", 1, 1, [("ada@example.com", "hard_bounce")])
    assert Suppression.objects.get().source == "dsn:1700000000.1.mx"
    assert "5.1.1" in Suppression.objects.get().detail
    # every message moved out of new/; the reports flagged seen, the reply left for a person
    assert sorted(p.name for p in (maildir / "new").iterdir()) == []
    assert sorted(p.name for p in (maildir / "cur").iterdir()) == [
        "1700000000.1.mx:2,S",
        "1700000000.2.mx:2,S",
        "1700000000.3.mx:2,",
    ]

    # when: the same DSN is delivered again (a crash before the move, or a duplicate)
    (maildir / "new" / "1700000000.4.mx").write_bytes(
        _dsn(recipient="ada@example.com", status="5.1.1", message_id=delivery.message_id)
    )
    call_command("process_bounces", maildir=str(maildir))

    # then: nothing more changed
    assert _state(delivery) == ("bounced", 1, 1, [("ada@example.com", "hard_bounce")])


def test_a_delay_notice_alone_changes_nothing(tmp_path):
    delivery = _sent_delivery()
    maildir = _maildir(
        tmp_path / "bounces",
        {"1.mx": _dsn(recipient="ada@example.com", status="4.2.2", message_id=delivery.message_id)},
    )
    call_command("process_bounces", maildir=str(maildir))
    assert _state(delivery) == ("sent", 1, 0, [])


def _signed(client: APIClient, body: bytes, secret: str = SECRET, header: str | None = None):
    signature = header if header is not None else hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post("/api/v1/bounces/", body, content_type="application/json", HTTP_X_SIGNATURE=signature)


def test_a_signed_webhook_bounce_marks_the_delivery_bounced_and_suppresses_once(settings, anon_client):
    # given
    settings.BOUNCE_WEBHOOK_SECRET = SECRET
    delivery = _sent_delivery()
    body = json.dumps(
        {
            "type": "bounce",
            "email": "ada@example.com",
            "message_id": delivery.message_id,
            "diagnostic": "550 5.1.1 user unknown",
            "permanent": True,
        }
    ).encode()

    # when: the provider calls, then retries the same call
    first, second = _signed(anon_client, body), _signed(anon_client, body)

    # then
    assert (first.status_code, first.json()) == (200, {"suppressed": True, "bounced_delivery": delivery.pk})
    assert (second.status_code, second.json()) == (200, {"suppressed": True, "bounced_delivery": None})
    assert _state(delivery) == ("bounced", 1, 1, [("ada@example.com", "hard_bounce")])
    assert Suppression.objects.get().source == "webhook"


def test_a_webhook_complaint_by_campaign_and_address_suppresses_without_bouncing(settings, anon_client):
    settings.BOUNCE_WEBHOOK_SECRET = SECRET
    delivery = _sent_delivery()
    body = json.dumps(
        {"type": "complaint", "email": "ADA@example.com", "campaign_id": delivery.campaign_id, "permanent": True}
    ).encode()
    assert _signed(anon_client, body).status_code == 200
    assert _state(delivery) == ("sent", 1, 0, [("ada@example.com", "complaint")])


@pytest.mark.parametrize(
    "case",
    ["no signature", "wrong signature", "signed with another secret", "unknown field", "not an object", "no secret"],
)
def test_bad_webhook_calls_get_a_4xx_json_error_and_change_nothing(settings, anon_client, case):
    # given
    settings.BOUNCE_WEBHOOK_SECRET = SECRET
    delivery = _sent_delivery()
    good = {"type": "bounce", "email": "ada@example.com", "message_id": delivery.message_id, "permanent": True}
    body = json.dumps(good).encode()
    before = _state(delivery)

    # when
    if case == "no signature":
        response = anon_client.post("/api/v1/bounces/", body, content_type="application/json")
    elif case == "wrong signature":
        response = _signed(anon_client, body, header="0" * 64)
    elif case == "signed with another secret":
        response = _signed(anon_client, body, secret="not-the-secret")
    elif case == "unknown field":
        response = _signed(anon_client, json.dumps({**good, "recipient": 1}).encode())
    elif case == "not an object":
        response = _signed(anon_client, json.dumps([good]).encode())
    else:  # the webhook is off without a secret, even for a body signed with an empty key
        settings.BOUNCE_WEBHOOK_SECRET = ""
        response = _signed(anon_client, body, secret="")

    # then
    expected = {
        "no signature": 403,
        "wrong signature": 403,
        "signed with another secret": 403,
        "unknown field": 400,
        "not an object": 400,
        "no secret": 404,
    }[case]
    assert response.status_code == expected, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["status"] == expected
    if case == "unknown field":
        assert response.json()["errors"] == {"recipient": ["Unknown field."]}
    assert _state(delivery) == before == ("sent", 1, 0, [])
