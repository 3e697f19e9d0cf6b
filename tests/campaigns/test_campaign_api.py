import re

import pytest

from campaigns.models import Campaign
from workers.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "subject": "Hi", "body": "Hello"},
        {"name": "Spring", "subject": "Hi", "body": "Hello {{ nickname }}"},
        {"name": "Spring", "subject": "Hi {{ password }}", "body": "Hello"},
        {"name": "Spring", "subject": "Hi", "body": "Hello", "channels": ["pigeon"]},
    ],
)
def test_bad_campaign_is_400_and_creates_nothing(api_client, redis_client, body):
    # when
    response = api_client.post("/api/v1/campaigns/", body, format="json")

    # then
    assert response.status_code == 400
    assert set(response.json()) >= {"status", "title", "description"}
    assert Campaign.objects.count() == 0
    assert OutboxEvent.objects.count() == 0
    assert redis_client.exists("campaign") == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Spring\r\nBcc: x@example.com"),
        ("subject", "Promo\r\nBcc: x@example.com"),
        ("subject", "Hi {{ name }}\nReply-To: evil@example.com"),
        ("subject", "Promo\u2028Bcc: x@example.com"),
        ("from_email", "news@example.com\r\nBcc: x@example.com"),
    ],
)
def test_line_break_in_a_header_field_is_400_naming_it_and_creates_nothing(api_client, redis_client, field, value):
    # given
    body = {"name": "Spring", "subject": "Hi", "body": "Line one\r\nline two", "from_email": "news@example.com"}

    # when
    response = api_client.post("/api/v1/campaigns/", {**body, field: value}, format="json")

    # then
    assert response.status_code == 400, response.content
    payload = response.json()
    assert list(payload["errors"]) == [field]
    assert payload["description"].startswith(f"{field}: ")
    assert Campaign.objects.count() == 0
    assert OutboxEvent.objects.count() == 0
    assert redis_client.exists("campaign") == 0


def test_line_breaks_in_the_body_are_fine(api_client):
    response = api_client.post("/api/v1/campaigns/", {"name": "S", "subject": "Hi", "body": "One\r\ntwo\n"})

    assert response.status_code == 201
    assert Campaign.objects.get().body == "One\r\ntwo"


def test_non_json_campaign_is_400_and_creates_nothing(api_client, redis_client):
    # when
    response = api_client.generic("POST", "/api/v1/campaigns/", "{name: oops", content_type="application/json")

    # then
    assert response.status_code == 400
    assert response.json()["description"].startswith("The request body is not valid JSON")
    assert Campaign.objects.count() == 0
    assert OutboxEvent.objects.count() == 0
    assert redis_client.exists("campaign") == 0


def test_unknown_field_error_names_the_field(api_client):
    response = api_client.post("/api/v1/campaigns/", {"name": "x", "subject": "s", "body": "{{ nickname }}"})

    assert response.status_code == 400
    assert "nickname" in response.json()["description"]


@pytest.mark.django_db(transaction=True)
def test_create_campaign_publishes_one_event_after_commit(api_client, redis_client):
    # when
    response = api_client.post(
        "/api/v1/campaigns/", {"name": "Spring", "subject": "Hi {{ name }}", "body": "Hello {{ lastName }}"}
    )

    # then
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued" and body["from_email"] == "test@test.com" and body["channels"] == ["email"]
    assert (body["recipients"], body["sent"], body["failed"], body["skipped"]) == (0, 0, 0, 0)
    entries = redis_client.xrange("campaign")
    assert len(entries) == 1
    assert entries[0][1]["type"] == "campaigns.campaign.queued"
    assert f'"campaign_id":{body["id"]}' in entries[0][1]["payload"]


def test_draft_is_not_published_until_sent(api_client, redis_client):
    response = api_client.post("/api/v1/campaigns/", {"name": "D", "subject": "s", "body": "b", "send": False})

    assert response.status_code == 201 and response.json()["status"] == "draft"
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_seed_campaign_create(api_client, redis_client):
    # when
    response = api_client.get("/api/v1/campaign/create")

    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "name"}
    assert re.fullmatch(r"Campaign [A-Z0-9]{5}", body["name"])
    campaign = Campaign.objects.get(pk=body["id"])
    assert campaign.subject == "New Campaign"
    assert body["name"] in campaign.body
    assert campaign.from_email == "test@test.com"
    assert redis_client.xlen("campaign") == 1


def test_cancel_a_queued_campaign(api_client):
    created = api_client.post("/api/v1/campaigns/", {"name": "C", "subject": "s", "body": "b"}).json()

    response = api_client.post(f"/api/v1/campaigns/{created['id']}/cancel/")
    again = api_client.post(f"/api/v1/campaigns/{created['id']}/cancel/")

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert again.status_code == 409


def test_seed_email_send(api_client, smtp_server):
    # when
    response = api_client.post("/api/v1/email/send")

    # then
    assert response.status_code == 200 and response.json() is True
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("test@test.com",)
    assert mail.mail_from == "test@test.com"
