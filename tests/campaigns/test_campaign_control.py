"""Scheduling, pause/resume transitions, preview and test send, through the API (real
PostgreSQL, Redis and SMTP server); the scheduler's tick is driven with a given `now`."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_create, campaigns_start_due
from notifications.models import Delivery
from users.models import Recipient
from workers.events import Event
from workers.models import OutboxEvent
from workers.publish import stream_name

pytestmark = pytest.mark.django_db


def _scheduled(api_client, send_at):
    response = api_client.post(
        "/api/v1/campaigns/",
        {"name": "Later", "subject": "Hi {{ name }}", "body": "Dear {{ name }}", "send_at": send_at.isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def _campaign_events():
    return OutboxEvent.objects.filter(stream=stream_name("campaign")).count()


def test_scheduled_campaign_starts_on_time_and_not_before(api_client, redis_client):
    # given a campaign scheduled an hour from now
    send_at = timezone.now() + timedelta(hours=1)
    created = _scheduled(api_client, send_at)
    assert created["status"] == "scheduled" and _campaign_events() == 0

    # when the scheduler ticks a second before send_at
    started_early = campaigns_start_due(now=send_at - timedelta(seconds=1))

    # then nothing starts
    assert started_early == 0
    assert Campaign.objects.get(pk=created["id"]).status == "scheduled"
    assert _campaign_events() == 0

    # when it ticks at send_at, and again (two schedulers, or a repeated tick)
    started = campaigns_start_due(now=send_at)
    again = campaigns_start_due(now=send_at + timedelta(seconds=5))

    # then it is queued once, with one `campaign` event
    assert (started, again) == (1, 0)
    assert Campaign.objects.get(pk=created["id"]).status == "queued"
    assert _campaign_events() == 1


def test_scheduled_campaign_is_editable_until_it_starts(api_client, redis_client):
    # given
    send_at = timezone.now() + timedelta(hours=1)
    campaign_id = _scheduled(api_client, send_at)["id"]
    later = send_at + timedelta(hours=1)

    # when subject and send_at change while it is scheduled
    response = api_client.patch(
        f"/api/v1/campaigns/{campaign_id}/", {"subject": "New {{ name }}", "send_at": later.isoformat()}, format="json"
    )

    # then
    assert response.status_code == 200, response.content
    assert response.json()["subject"] == "New {{ name }}"
    assert Campaign.objects.get(pk=campaign_id).send_at == later
    assert campaigns_start_due(now=send_at) == 0

    # when it has started, an edit is refused and changes nothing
    assert campaigns_start_due(now=later) == 1
    response = api_client.patch(f"/api/v1/campaigns/{campaign_id}/", {"subject": "Too late"}, format="json")
    assert response.status_code == 409
    assert Campaign.objects.get(pk=campaign_id).subject == "New {{ name }}"


@pytest.mark.parametrize("send_at", ["2001-01-01T00:00:00Z", "tomorrow-ish", "2030-13-45T99:00:00Z"])
def test_bad_send_at_is_400_naming_the_field_and_creates_nothing(api_client, redis_client, send_at):
    # when
    response = api_client.post(
        "/api/v1/campaigns/", {"name": "Later", "subject": "Hi", "body": "Hello", "send_at": send_at}, format="json"
    )

    # then
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/")
    assert "send_at" in response.json()["errors"]
    assert Campaign.objects.count() == 0 and OutboxEvent.objects.count() == 0


def test_pause_and_resume_are_409_when_the_status_forbids_them(api_client, redis_client):
    # given a draft
    campaign = campaign_create(name="Draft", subject="s", body="b", send=False)

    # when / then
    for action in ("pause", "resume"):
        response = api_client.post(f"/api/v1/campaigns/{campaign.pk}/{action}/")
        assert response.status_code == 409, action
        assert set(response.json()) >= {"status", "title", "description"}
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    assert _campaign_events() == 0


def test_pause_then_resume_requeues_the_pending_rows(api_client, redis_client):
    # given a sending campaign with two pending rows and one sent
    campaign = campaign_create(name="Run", subject="s", body="b", send=False)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    for address, status in (("a@example.com", "pending"), ("b@example.com", "pending"), ("c@example.com", "sent")):
        Delivery.objects.create(campaign=campaign, address=address, status=status)

    # when
    paused = api_client.post(f"/api/v1/campaigns/{campaign.pk}/pause/")
    resumed = api_client.post(f"/api/v1/campaigns/{campaign.pk}/resume/")

    # then: paused with its reason, then sending again, the two pending rows queued again
    assert (paused.status_code, paused.json()["status"], paused.json()["paused_reason"]) == (
        200,
        "paused",
        "paused by an operator",
    )
    assert (resumed.status_code, resumed.json()["status"], resumed.json()["paused_reason"]) == (200, "sending", "")
    queued = [
        Event.from_fields(f)
        for f in OutboxEvent.objects.filter(stream=stream_name("email")).values_list("fields", flat=True)
    ]
    assert sorted(pk for e in queued for pk in e.payload["delivery_ids"]) == sorted(
        Delivery.objects.filter(status="pending").values_list("pk", flat=True)
    )


def test_preview_renders_for_the_chosen_recipient_through_the_builder(api_client, redis_client):
    # given
    ada = Recipient.objects.create(username="ada", name="Ada", last_name="L", email="ada@example.com")
    campaign = campaign_create(name="Hello", subject="Hi {{ name }}", body="Dear {{ name }} {{ lastName }}", send=False)

    # when
    response = api_client.get(f"/api/v1/campaigns/{campaign.pk}/preview/?recipient={ada.pk}")

    # then
    assert response.status_code == 200, response.content
    preview = response.json()
    assert (preview["to"], preview["subject"]) == ("ada@example.com", "Hi Ada")
    # the body as sent: the text, then the recipient's own unsubscribe link
    body, _, footer = preview["body"].partition("\r\n\r\n--\r\n")
    assert body == "Dear Ada L"
    assert footer.startswith("Unsubscribe: http://") and "/u/" in footer
    headers = dict(preview["headers"])
    assert headers["Message-ID"] == f"<campaign-{campaign.pk}.recipient-{ada.pk}@commsplatform.local>"
    assert headers["To"] == "ada@example.com" and headers["Subject"] == "Hi Ada"


@pytest.mark.parametrize("query", ["?recipient=999999", "?recipient=abc", ""])
def test_preview_of_an_unknown_recipient_is_400(api_client, redis_client, query):
    campaign = campaign_create(name="Hello", subject="Hi", body="b", send=False)
    response = api_client.get(f"/api/v1/campaigns/{campaign.pk}/preview/{query}")
    assert response.status_code == 400
    assert "recipient" in response.json()["errors"]


def test_send_test_mails_one_address_and_records_nothing(api_client, redis_client, smtp_server):
    # given
    campaign = campaign_create(name="Hello", subject="Hi {{ name }}", body="Dear {{ name }}", send=False)

    # when
    response = api_client.post(
        f"/api/v1/campaigns/{campaign.pk}/send-test/", {"email": "me@example.com"}, format="json"
    )

    # then: one mail to that address; no ledger row, no counter, no status change
    assert response.status_code == 200, response.content
    assert response.json()["smtp_code"] == 250
    assert [m.rcpt_tos for m in smtp_server.messages] == [("me@example.com",)]
    assert Delivery.objects.count() == 0
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count) == ("draft", 0)


@pytest.mark.parametrize(
    "email", ["not-an-address", "a@example.com, b@example.com", "a@example.com\r\nBcc: x@example.com", ""]
)
def test_send_test_to_a_bad_address_is_400_and_sends_nothing(api_client, redis_client, smtp_server, email):
    campaign = campaign_create(name="Hello", subject="Hi", body="b", send=False)
    response = api_client.post(f"/api/v1/campaigns/{campaign.pk}/send-test/", {"email": email}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["errors"]
    assert smtp_server.messages == [] and Delivery.objects.count() == 0


def test_detail_shows_deliveries_per_status_and_the_latest_failures(api_client, redis_client):
    # given
    campaign = campaign_create(name="Run", subject="s", body="b", send=False)
    Delivery.objects.create(campaign=campaign, address="a@example.com", status="sent", smtp_code=250)
    Delivery.objects.create(
        campaign=campaign, address="b@example.com", status="failed", smtp_code=550, smtp_response="no such user"
    )
    Delivery.objects.create(campaign=campaign, address="c@example.com", status="failed", smtp_code=451)
    Delivery.objects.create(campaign=campaign, channel="sms", status="not_configured")

    # when
    body = api_client.get(f"/api/v1/campaigns/{campaign.pk}/").json()

    # then
    assert body["deliveries"] == {"sent": 1, "failed": 2, "bounced": 0, "unsubscribed": 0, "skipped": 1}
    assert [(f["address"], f["smtp_code"], f["retryable"]) for f in body["failures"]] == [
        ("c@example.com", 451, True),
        ("b@example.com", 550, False),
    ]
