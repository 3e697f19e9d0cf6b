"""The campaign state machine (campaigns/states.py): illegal transitions are a 409 that
changes nothing, and concurrent transitions are serialized by the conditional UPDATE."""

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campaigns.models import Campaign
from campaigns.states import TRANSITIONS
from notifications.models import Delivery
from tests.helpers import wait_until
from users.models import Recipient
from workers.models import OutboxEvent


def _campaign(status: str, *, failed: int = 0, pending: int = 0, sent: int = 0) -> Campaign:
    """A campaign in `status` whose ledger has that many failed (retryable: 451, attempts
    used up), pending and sent email deliveries."""
    total = failed + pending + sent
    finished = timezone.now() if status in ("completed", "completed_with_failures", "cancelled") else None
    campaign = Campaign.objects.create(
        name="C",
        subject="s",
        body="b",
        from_email="test@test.com",
        channels=["email"],
        status=status,
        recipients_count=total,
        sent_count=sent,
        failed_count=failed,
        fanout_done_at=timezone.now(),
        finished_at=finished,
    )
    statuses = ["failed"] * failed + ["pending"] * pending + ["sent"] * sent
    for n, delivery_status in enumerate(statuses):
        recipient = Recipient.objects.create(username=f"u{campaign.pk}-{n}", email=f"u{n}@example.com")
        Delivery.objects.create(
            campaign=campaign,
            recipient=recipient,
            address=recipient.email,
            status=delivery_status,
            smtp_code=451 if delivery_status == "failed" else None,
        )
    return campaign


def _state(campaign: Campaign) -> dict:
    campaign.refresh_from_db()
    return {
        "campaign": (campaign.status, campaign.sent_count, campaign.failed_count, campaign.finished_at),
        "deliveries": sorted(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)),
        "outbox": OutboxEvent.objects.count(),
    }


def _assert_conflict(response, status: str, transition: str) -> None:
    assert response.status_code == 409, response.content
    body = response.json()
    assert (body["status"], body["title"]) == (409, "Conflict")
    assert f"is {status}" in body["description"] and f"'{transition}'" in body["description"], body


def test_the_table_has_no_way_out_of_a_final_state():
    sources = {source for transition in TRANSITIONS for source in transition.sources}
    assert "cancelled" not in sources and "completed" not in sources
    assert {t.name: t.target for t in TRANSITIONS if "completed_with_failures" in t.sources} == {
        "retry_failed": "sending"
    }


@pytest.mark.django_db(transaction=True)
def test_retry_failed_on_a_cancelled_campaign_is_409_and_changes_nothing(api_client, redis_client):
    # given: a campaign cancelled while two of its deliveries had failed
    campaign = _campaign("cancelled", failed=2, sent=1)
    before = _state(campaign)

    # when
    response = api_client.post(f"/api/v1/campaigns/{campaign.pk}/retry-failed/")

    # then: refused; status, counters and ledger as they were; nothing queued or published
    _assert_conflict(response, "cancelled", "retry-failed")
    assert _state(campaign) == before
    assert redis_client.exists("email-notification") == 0


@pytest.mark.django_db(transaction=True)
def test_retry_failed_on_a_completed_campaign_is_409(api_client, redis_client):
    campaign = _campaign("completed", sent=2)
    before = _state(campaign)

    response = api_client.post(f"/api/v1/campaigns/{campaign.pk}/retry-failed/")

    _assert_conflict(response, "completed", "retry-failed")
    assert _state(campaign) == before
    assert redis_client.exists("email-notification") == 0


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["completed", "completed_with_failures", "cancelled"])
def test_cancelling_a_finished_campaign_is_409_and_changes_nothing(api_client, status):
    campaign = _campaign(status, failed=1 if status != "completed" else 0, sent=1)
    before = _state(campaign)

    response = api_client.post(f"/api/v1/campaigns/{campaign.pk}/cancel/")

    _assert_conflict(response, status, "cancel")
    assert _state(campaign) == before


@pytest.mark.django_db
def test_sending_a_campaign_that_is_not_a_draft_is_409(api_client):
    campaign = _campaign("queued")
    before = _state(campaign)

    response = api_client.post(f"/api/v1/campaigns/{campaign.pk}/send/")

    _assert_conflict(response, "queued", "send")
    assert _state(campaign) == before


@pytest.mark.django_db(transaction=True)
def test_retry_failed_after_failures_sends_the_campaign_again(api_client, redis_client):
    campaign = _campaign("completed_with_failures", failed=2, sent=1)

    response = api_client.post(f"/api/v1/campaigns/{campaign.pk}/retry-failed/")

    assert response.status_code == 200 and response.json() == {"retried": 2}
    state = _state(campaign)
    assert state["campaign"] == ("sending", 1, 0, None)
    assert state["deliveries"] == ["pending", "pending", "sent"]
    assert redis_client.xlen("email-notification") == 1


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        # inside a transaction pg_stat_activity is a snapshot unless cleared
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _post_in_thread(token: str, path: str, results: dict, key: str) -> threading.Thread:
    def run():
        client = APIClient()  # one per thread: a test client is not thread-safe
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            results[key] = client.post(path)
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=key)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["cancel", "retry-failed"])
def test_concurrent_cancel_and_retry_never_revive_a_cancelled_campaign(api_user, redis_client, first):
    # given: a sending campaign with failed and pending deliveries, its row locked by the
    # test so that both requests wait at their conditional UPDATE, `first` ahead in the queue
    campaign = _campaign("sending", failed=2, pending=3, sent=1)
    second = "retry-failed" if first == "cancel" else "cancel"
    token = Token.objects.create(user=api_user).key
    results: dict = {}
    with transaction.atomic():
        Campaign.objects.select_for_update().get(pk=campaign.pk)
        threads = [_post_in_thread(token, f"/api/v1/campaigns/{campaign.pk}/{first}/", results, first)]
        wait_until(lambda: _waiting_on_locks() == 1, message=f"{first} waiting on the campaign row")
        threads.append(_post_in_thread(token, f"/api/v1/campaigns/{campaign.pk}/{second}/", results, second))
        wait_until(lambda: _waiting_on_locks() == 2, message=f"{second} waiting too")
    # when: the lock is released
    for thread in threads:
        thread.join(timeout=30)

    # then
    state = _state(campaign)
    assert results["cancel"].status_code == 200
    if first == "cancel":
        # the cancel won; the retry saw it and was refused, changing nothing
        _assert_conflict(results["retry-failed"], "cancelled", "retry-failed")
        assert state["campaign"][:3] == ("cancelled", 1, 2)
        assert state["deliveries"] == ["cancelled"] * 3 + ["failed"] * 2 + ["sent"]
        assert redis_client.exists("email-notification") == 0
    else:
        # the retry went first; the cancel then stopped everything, the retried ones too
        assert results["retry-failed"].json() == {"retried": 2}
        assert state["campaign"][:3] == ("cancelled", 1, 0)
        assert state["deliveries"] == ["cancelled"] * 5 + ["sent"]
