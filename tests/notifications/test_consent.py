"""Consent: one-click unsubscribe links (RFC 8058), the suppression list, HTML parts.

End to end with the workers in a subprocess and a real SMTP server; the sender driven
in-process where one chunk is enough (real SMTP server, real PostgreSQL and Redis).
"""

import re
from email.message import EmailMessage

import pytest
from django.contrib.auth.models import Group
from django.core import signing
from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign
from commsplatform.roles import roles_ensure
from notifications.handlers import handle_email_batch
from notifications.models import Delivery, Suppression
from notifications.sending import deliveries_send
from notifications.services import deliveries_route, message_id_for, notification_send
from notifications.suppression import is_hard_bounce
from notifications.unsubscribe import unsubscribe_token
from tests.helpers import wait_until
from users.models import Recipient
from workers.events import Event

pytestmark = pytest.mark.django_db(transaction=True)

BASE_URL = "https://mail.example.test"
WORKER_ENV = {
    "PUBLIC_BASE_URL": BASE_URL,
    "CAMPAIGN_FANOUT_CHUNK": "10",
    "EMAIL_BATCH_SIZE": "10",
    "EMAIL_SEND_CHUNK": "5",
    "EMAIL_SENDER_CONCURRENCY": "1",
    "EMAIL_RETRY_POLL_S": "0.2",
    "WORKER_BLOCK_MS": "200",
}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
WORKERS = ("runworker", "campaign-fanout", "notification-router", "email-sender", "email-retry")


def _recipients(count: int) -> list[Recipient]:
    return [
        Recipient.objects.create(username=f"r{n}", name=f"Name{n}", email=f"r{n}@example.com") for n in range(count)
    ]


def _campaign_via_api(api_client, name: str, **extra) -> int:
    response = api_client.post(
        "/api/v1/campaigns/",
        {"name": name, "subject": "Hi {{ name }}", "body": "Dear {{ name }}", **extra},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _finished(campaign_id: int):
    def check():
        campaign = Campaign.objects.get(pk=campaign_id)
        return campaign if campaign.status in ("completed", "completed_with_failures") else None

    return check


def _raw_header(raw: bytes, name: str) -> str | None:
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    match = re.search(rf"^{name}: (.*)$", head, flags=re.MULTILINE | re.IGNORECASE)
    return match.group(1).rstrip("\r") if match else None


def _sending_campaign(**fields) -> Campaign:
    return Campaign.objects.create(
        name=fields.pop("name", "Direct"),
        subject=fields.pop("subject", "Hi {{ name }}"),
        body=fields.pop("body", "Dear {{ name }}"),
        from_email="test@test.com",
        channels=["email"],
        status=Campaign.Status.SENDING,
        **fields,
    )


def _pending_deliveries(campaign: Campaign, recipients: list[Recipient]) -> list[int]:
    return [
        Delivery.objects.create(
            campaign=campaign,
            recipient=r,
            address=r.email,
            message_id=message_id_for(campaign_id=campaign.pk, recipient_id=r.pk),
        ).pk
        for r in recipients
    ]


# --- one-click unsubscribe, end to end ------------------------------------------------------
def test_one_click_unsubscribe_end_to_end_skips_the_recipient_in_the_next_campaign(
    api_client, anon_client, smtp_server, worker_process
):
    # given: three recipients and a first campaign sent by the workers
    ada, bob, cy = _recipients(3)
    worker_process(*WORKERS, env=WORKER_ENV)
    first = _campaign_via_api(api_client, "First")
    wait_until(_finished(first), timeout=60)
    mails = {m.rcpt_tos[0]: m for m in smtp_server.wait_for(3)}

    # then: every mail carries its own signed link, in the raw DATA the server received
    raw = mails["r1@example.com"].raw
    token = unsubscribe_token(campaign_id=first, recipient_id=bob.pk)
    assert _raw_header(raw, "List-Unsubscribe") == f"<{BASE_URL}/u/{token}>"
    assert _raw_header(raw, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    assert f"Unsubscribe: {BASE_URL}/u/{token}" in mails["r1@example.com"].body
    assert _raw_header(mails["r0@example.com"].raw, "List-Unsubscribe") != _raw_header(raw, "List-Unsubscribe")

    # when: bob's mail client makes the RFC 8058 one-click POST (no login, no CSRF token), twice
    path = _raw_header(raw, "List-Unsubscribe")[1:-1].removeprefix(BASE_URL)  # type: ignore[index]
    answers = [
        anon_client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
        for _ in range(2)
    ]

    # then: 200 both times (idempotent), nothing about bob in the answer, one suppression
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    assert set(answers[0].json()) == {"status", "title", "description"}
    assert "r1@example.com" not in answers[0].content.decode()
    assert list(Suppression.objects.values_list("address", "reason")) == [("r1@example.com", "unsubscribe")]

    # when: the next campaign
    smtp_server.clear()
    second = _campaign_via_api(api_client, "Second")
    campaign = wait_until(_finished(second), timeout=60)

    # then: bob is skipped as unsubscribed and counted; the others get their mail
    assert sorted(m.rcpt_tos[0] for m in smtp_server.wait_for(2)) == ["r0@example.com", "r2@example.com"]
    assert (campaign.status, campaign.sent_count, campaign.skipped_count, campaign.unsubscribed_count) == (
        "completed",
        2,
        1,
        1,
    )
    skipped = Delivery.objects.get(campaign_id=second, recipient=bob)
    assert (skipped.status, skipped.reason) == ("skipped", "unsubscribed")
    assert len(smtp_server.messages) == 2


def test_the_link_page_shows_a_confirmation_and_only_its_button_unsubscribes(anon_client):
    # given
    (ada,) = _recipients(1)
    token = unsubscribe_token(campaign_id=7, recipient_id=ada.pk)

    # when: a link scanner or a person opens the link
    page = anon_client.get(f"/u/{token}")

    # then: a page with a form that POSTs back, no external assets, nothing changed
    html = page.content.decode()
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert '<form method="post">' in html and "<button" in html
    assert "http" not in html and "<script" not in html and "<link" not in html
    assert "ada" not in html.lower()
    assert Suppression.objects.count() == 0

    # when: the button is pressed (a browser's form POST)
    done = anon_client.post(f"/u/{token}", {"List-Unsubscribe": "One-Click"}, HTTP_ACCEPT=BROWSER_ACCEPT)

    # then
    assert done.status_code == 200 and "You are unsubscribed" in done.content.decode()
    assert list(Suppression.objects.values_list("address", "reason")) == [(ada.email, "unsubscribe")]


@pytest.mark.parametrize("route", ["/u/{}", "/api/v1/unsubscribe/{}/", "/api/v1/unsubscribe/{}"])
def test_a_forged_or_stale_unsubscribe_token_is_a_404_with_one_body_and_changes_nothing(anon_client, route):
    # given: tokens wrong in every way: garbage, an altered id, a foreign salt, a recipient gone
    (ada,) = _recipients(1)
    good = unsubscribe_token(campaign_id=1, recipient_id=ada.pk)
    signature = good.split(":")[1]

    forged = [
        "garbage",
        f"1.{ada.pk + 1}:{signature}",  # someone else's id under ada's signature
        signing.Signer(salt="another.salt").sign(f"1.{ada.pk}"),
        unsubscribe_token(campaign_id=1, recipient_id=ada.pk + 1000),  # signed, but no such recipient
        good[:-2],
    ]

    # when
    answers = [anon_client.post(route.format(token)) for token in forged]

    # then: the same 404 JSON body for all, no recipient data, no row
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert answers[0].json() == {
        "status": 404,
        "title": "Not Found",
        "description": "This unsubscribe link is not valid.",
    }
    assert Suppression.objects.count() == 0


# --- the suppression list ------------------------------------------------------------------
def test_a_5xx_for_the_address_at_send_time_fails_the_delivery_and_suppresses_it(smtp_server, redis_client):
    # given: the server refuses one mailbox for good (550 5.1.1) and one mail on policy (554 5.7.1 is
    # about the message, not the address)
    ada, bob, cy = _recipients(3)
    smtp_server.refuse_address(bob.email, 550)
    campaign = _sending_campaign(recipients_count=3)
    ids = _pending_deliveries(campaign, [ada, bob, cy])

    # when
    sent = deliveries_send(delivery_ids=ids)

    # then: bob's delivery failed with the server's reply, and his address is suppressed
    assert sent == 2
    failed = Delivery.objects.get(recipient=bob)
    assert (failed.status, failed.smtp_code) == ("failed", 550)
    assert list(Suppression.objects.values_list("address", "reason", "source")) == [
        ("r1@example.com", "hard_bounce", "smtp")
    ]
    assert "550" in Suppression.objects.get().detail
    assert (is_hard_bounce(554, "5.7.1 Message refused as spam"), is_hard_bounce(552, "Message too big")) == (
        False,
        False,
    )

    # when: a later campaign routes the same recipients
    later = _sending_campaign(name="Later")
    with transaction.atomic():
        deliveries_route(campaign_id=later.pk, recipient_ids=[ada.pk, bob.pk, cy.pk])

    # then: bob's address is skipped with the reason; no one is counted as unsubscribed
    rows = dict(Delivery.objects.filter(campaign=later).values_list("recipient_id", "reason"))
    assert rows == {ada.pk: "", bob.pk: "suppressed: hard_bounce", cy.pk: ""}
    later.refresh_from_db()
    assert (later.skipped_count, later.unsubscribed_count) == (1, 0)


def test_suppressions_api_lists_adds_case_insensitively_and_deletes(api_client):
    # when: an operator adds an address twice, in two spellings
    first = api_client.post("/api/v1/suppressions/", {"address": "Ada@Example.com"}, format="json")
    again = api_client.post(
        "/api/v1/suppressions/", {"address": "ada@example.COM", "reason": "complaint"}, format="json"
    )

    # then: one entry, the first, lower-cased
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert (first.json()["address"], first.json()["reason"], first.json()["source"]) == (
        "ada@example.com",
        "manual",
        "api:alice",
    )
    listed = api_client.get("/api/v1/suppressions/?search=ada").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == first.json()["id"]

    # when: bad input
    bad = [
        api_client.post("/api/v1/suppressions/", {"address": "not an address"}, format="json"),
        api_client.post("/api/v1/suppressions/", {"address": "x@example.com", "reason": "because"}, format="json"),
    ]
    # then: 400 with the error shape, nothing added
    assert [b.status_code for b in bad] == [400, 400] and all(b.json()["status"] == 400 for b in bad)
    assert Suppression.objects.count() == 1

    # when: deleted
    assert api_client.delete(f"/api/v1/suppressions/{first.json()['id']}/").status_code == 204
    assert api_client.delete(f"/api/v1/suppressions/{first.json()['id']}/").status_code == 404
    assert Suppression.objects.count() == 0


def test_operators_manage_suppressions_in_the_admin(staff_client, staff_user):
    # given: a staff user in the operators group (the admin needs staff status, the rows the permissions)
    roles_ensure()
    staff_user.groups.add(Group.objects.get(name="operators"))
    response = staff_client.get("/admin/notifications/suppression/add/")
    assert response.status_code == 200

    # when
    staff_client.post(
        "/admin/notifications/suppression/add/", {"address": "Eve@Example.com", "reason": "manual"}, format="multipart"
    )

    # then: stored lower-cased, listed and searchable
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason, entry.source) == ("eve@example.com", "manual", "admin:staff")
    listing = staff_client.get("/admin/notifications/suppression/?q=eve").content.decode()
    assert "eve@example.com" in listing


# --- consent at send time ------------------------------------------------------------------
def test_a_recipient_who_unsubscribes_after_a_4xx_failure_gets_nothing_from_retry_failed(
    api_client, anon_client, smtp_server, worker_process
):
    # given: two of four recipients refused 451 until their single attempt is used up
    ada, bob, cy, dee = _recipients(4)
    smtp_server.refuse_address(bob.email, code=451)
    smtp_server.refuse_address(cy.email, code=451)
    worker_process(*WORKERS, env={**WORKER_ENV, "EMAIL_MAX_ATTEMPTS": "1"})
    campaign_id = _campaign_via_api(api_client, "Retry")
    campaign = wait_until(_finished(campaign_id), timeout=60)
    assert (campaign.status, campaign.sent_count, campaign.failed_count) == ("completed_with_failures", 2, 2)

    # when: bob unsubscribes through his link (one-click POST), the server recovers, and the
    # operator retries the failed recipients
    token = unsubscribe_token(campaign_id=campaign_id, recipient_id=bob.pk)
    answer = anon_client.post(
        f"/u/{token}", "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert answer.status_code == 200
    smtp_server.clear()
    smtp_server.accept_all()
    response = api_client.post(f"/api/v1/campaigns/{campaign_id}/retry-failed/")
    assert response.json() == {"retried": 2}
    campaign = wait_until(lambda: Campaign.objects.filter(pk=campaign_id, status="completed").first(), timeout=60)

    # then: only cy gets a mail; bob is skipped and counted as the router counts an
    # unsubscribe, and the counters add up to the recipients
    assert [m.rcpt_tos for m in smtp_server.wait_for(1)] == [(cy.email,)]
    counters = (
        campaign.recipients_count,
        campaign.sent_count,
        campaign.failed_count,
        campaign.skipped_count,
        campaign.unsubscribed_count,
    )
    assert counters == (4, 3, 0, 1, 1)
    assert campaign.sent_count + campaign.failed_count + campaign.skipped_count == campaign.recipients_count
    statuses = dict(Delivery.objects.filter(campaign_id=campaign_id).values_list("recipient_id", "status"))
    assert statuses == {ada.pk: "sent", bob.pk: "skipped", cy.pk: "sent", dee.pk: "sent"}
    assert Delivery.objects.get(campaign_id=campaign_id, recipient=bob).reason == "unsubscribed"
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize(
    ("reason", "skip_reason"),
    [
        ("hard_bounce", "suppressed: hard_bounce"),
        ("complaint", "suppressed: complaint"),
        ("manual", "suppressed: manual"),
    ],
)
def test_a_queued_campaign_mail_to_an_address_suppressed_since_routing_is_skipped_and_counted(
    smtp_server, redis_client, reason, skip_reason
):
    # given: routed, pending rows; then one address bounces hard (or complains, or is blocked) elsewhere
    ada, bob = _recipients(2)
    campaign = _sending_campaign(recipients_count=2)
    ids = _pending_deliveries(campaign, [ada, bob])
    Suppression.objects.create(address=bob.email.upper(), reason=reason, source="webhook")

    # when: the sender gets to the rows
    sent = deliveries_send(delivery_ids=ids)

    # then: no mail to bob, his row skipped with the router's reason, counted skipped (not unsubscribed)
    assert sent == 1
    assert [m.rcpt_tos for m in smtp_server.wait_for(1)] == [(ada.email,)]
    row = Delivery.objects.get(recipient=bob)
    assert (row.status, row.reason, row.attempts, row.smtp_code) == ("skipped", skip_reason, 0, None)
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.failed_count, campaign.skipped_count, campaign.unsubscribed_count) == (
        1,
        0,
        1,
        0,
    )
    assert len(smtp_server.messages) == 1


def test_a_queued_campaign_mail_of_a_recipient_who_opted_out_since_routing_is_skipped(smtp_server, redis_client):
    # given
    (ada,) = _recipients(1)
    campaign = _sending_campaign(recipients_count=1, fanout_done_at=timezone.now())
    ids = _pending_deliveries(campaign, [ada])
    Recipient.objects.filter(pk=ada.pk).update(opted_out=True)

    # when
    sent = deliveries_send(delivery_ids=ids)

    # then: nothing sent, skipped as the router skips it, and the campaign is complete
    assert sent == 0
    assert smtp_server.messages == []
    row = Delivery.objects.get()
    assert (row.status, row.reason) == ("skipped", "recipient opted out")
    campaign.refresh_from_db()
    assert (campaign.status, campaign.skipped_count, campaign.unsubscribed_count) == ("completed", 1, 0)


def test_transactional_mail_skips_hard_bounced_and_complained_addresses_but_not_unsubscribed_ones(
    smtp_server, redis_client
):
    # given: one address bounced hard, one complained, one unsubscribed from a campaign
    Suppression.objects.create(address="bounced@example.com", reason="hard_bounce", source="smtp")
    Suppression.objects.create(address="complained@example.com", reason="complaint", source="webhook")
    Suppression.objects.create(address="unsubscribed@example.com", reason="unsubscribe", source="link")

    # when: an order confirmation to each
    rows = {}
    for who in ("Bounced", "complained", "unsubscribed", "fine"):
        with transaction.atomic():
            rows[who.lower()] = notification_send(
                email=f"{who}@example.com", subject="Order 7", body="Completed.", dedupe_key=f"order:7:{who}"
            )
    for _, fields in redis_client.xrange("email-notification"):
        handle_email_batch(Event.from_fields(fields))

    # then: the known-bad addresses get nothing (skipped, never queued); an unsubscribe from
    # marketing does not stop transactional mail
    assert {who: (row.status, row.reason) for who, row in rows.items()} == {
        "bounced": ("skipped", "suppressed: hard_bounce"),
        "complained": ("skipped", "suppressed: complaint"),
        "unsubscribed": ("pending", ""),
        "fine": ("pending", ""),
    }
    assert sorted(m.rcpt_tos[0] for m in smtp_server.wait_for(2)) == ["fine@example.com", "unsubscribed@example.com"]
    assert redis_client.xlen("email-notification") == 2
    assert len(smtp_server.messages) == 2


def test_transactional_mail_to_an_address_that_complains_while_it_waits_is_not_sent(smtp_server, redis_client):
    # given: an order confirmation queued, then the address complains before the sender runs
    with transaction.atomic():
        row = notification_send(email="eve@example.com", subject="Order 8", body="Completed.", dedupe_key="order:8")
    Suppression.objects.create(address="eve@example.com", reason="complaint", source="webhook")

    # when
    sent = deliveries_send(delivery_ids=[row.pk])

    # then
    assert sent == 0
    assert smtp_server.messages == []
    row.refresh_from_db()
    assert (row.status, row.reason, row.attempts) == ("skipped", "suppressed: complaint", 0)


# --- HTML parts ----------------------------------------------------------------------------
def test_an_html_body_sends_multipart_alternative_with_escaped_recipient_fields(settings, smtp_server, redis_client):
    # given: a recipient whose name is markup
    settings.PUBLIC_BASE_URL = BASE_URL
    recipient = Recipient.objects.create(username="mal", name='<img src=x onerror="alert(1)">&', email="m@example.com")
    campaign = _sending_campaign(body="Dear {{ name }}", html_body="<p>Dear <b>{{ name }}</b></p>", recipients_count=1)
    ids = _pending_deliveries(campaign, [recipient])

    # when
    deliveries_send(delivery_ids=ids)

    # then: text and HTML alternatives; the HTML part carries the name escaped, the text part as typed
    (mail,) = smtp_server.wait_for(1)
    message: EmailMessage = mail.message
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert text.startswith('Dear <img src=x onerror="alert(1)">&\n')
    assert html.startswith("<p>Dear <b>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;</b></p>")
    assert "<img" not in html
    token = unsubscribe_token(campaign_id=campaign.pk, recipient_id=recipient.pk)
    assert f'<a href="{BASE_URL}/u/{token}">Unsubscribe</a>' in html
    assert f"Unsubscribe: {BASE_URL}/u/{token}" in text


def test_the_fast_token_is_the_signers_token_byte_for_byte(settings):
    from django.core import signing

    from notifications.unsubscribe import _SALT, unsubscribe_token, unsubscribe_token_read

    for campaign_id, recipient_id in [(1, 1), (20, 31), (987654, 123456789)]:
        token = unsubscribe_token(campaign_id=campaign_id, recipient_id=recipient_id)
        assert token == signing.Signer(salt=_SALT).sign(f"{campaign_id}.{recipient_id}")
        assert unsubscribe_token_read(token).recipient_id == recipient_id
    # a new SECRET_KEY signs anew (old links stay valid only through SECRET_KEY_FALLBACKS)
    old = unsubscribe_token(campaign_id=1, recipient_id=1)
    settings.SECRET_KEY = old[::-1] * 2  # another key, made here (the secrets grep flags literals)
    assert unsubscribe_token(campaign_id=1, recipient_id=1) != old
