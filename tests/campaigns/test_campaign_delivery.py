"""End to end: API → campaign-fanout → notification-router → email-sender → a real SMTP
server, with the workers in a subprocess (kill -9 is real)."""

from collections import Counter

import pytest

from campaigns.models import Campaign
from notifications.models import Delivery
from tests.helpers import wait_until
from users.models import Recipient
from users.services import recipients_generate

pytestmark = pytest.mark.django_db(transaction=True)

SEND_CHUNK = 5
CONCURRENCY = 2
# After a kill -9, only the rows a sender thread holds in `sending` can be sent again:
# at most EMAIL_SENDER_CONCURRENCY × EMAIL_SEND_CHUNK messages are received twice.
DUPLICATE_BOUND = CONCURRENCY * SEND_CHUNK

WORKER_ENV = {
    "CAMPAIGN_FANOUT_CHUNK": "40",
    "EMAIL_BATCH_SIZE": "20",
    "EMAIL_SEND_CHUNK": str(SEND_CHUNK),
    "EMAIL_SENDER_CONCURRENCY": str(CONCURRENCY),
    "EMAIL_MAX_ATTEMPTS": "50",
    "EMAIL_RETRY_BASE_S": "0.2",
    "EMAIL_RETRY_CAP_S": "0.5",
    "EMAIL_OUTAGE_PAUSE_BASE_S": "0.1",
    "EMAIL_OUTAGE_PAUSE_CAP_S": "0.5",
    "EMAIL_SENDING_LEASE_S": "2",
    "EMAIL_RETRY_POLL_S": "0.2",
    "WORKER_CLAIM_IDLE_MS": "1000",
    "WORKER_BLOCK_MS": "200",
}
WORKERS = ("runworker", "campaign-fanout", "notification-router", "email-sender", "email-retry")


def _start_workers(worker_process, **env):
    return worker_process(*WORKERS, env={**WORKER_ENV, **env})


def _create_campaign(api_client, **extra):
    response = api_client.post(
        "/api/v1/campaigns/",
        {
            "name": "Spring sale",
            "subject": "Hi {{ name }}",
            "body": "Dear {{ name }} {{ lastName }} ({{ username }})",
            **extra,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _finished(campaign_id):
    def check():
        campaign = Campaign.objects.get(pk=campaign_id)
        return campaign if campaign.status in ("completed", "completed_with_failures", "cancelled") else None

    return check


def test_campaign_sends_one_email_per_eligible_user(api_client, smtp_server, worker_process):
    # given: 100 users with an email, one opted out, one without an email
    recipients_generate(count=100, seed=3)
    Recipient.objects.create(username="quiet", email="quiet@example.com", opted_out=True)
    Recipient.objects.create(username="nomail", email=None)
    _start_workers(worker_process)

    # when
    campaign_id = _create_campaign(api_client, channels=["email", "sms"])

    # then
    campaign = wait_until(_finished(campaign_id), timeout=60)
    assert campaign.status == "completed"
    # 102 users × 2 channels; skipped = 102 sms (not configured) + opted-out + no email
    assert (
        campaign.recipients_count,
        campaign.sent_count,
        campaign.failed_count,
        campaign.skipped_count,
    ) == (
        204,
        100,
        0,
        104,
    )
    mails = smtp_server.messages
    assert len(mails) == 100
    eligible = {r.email: r for r in Recipient.objects.filter(opted_out=False, email__isnull=False)}
    assert Counter(m.rcpt_tos[0] for m in mails) == Counter(set(eligible))
    for mail in mails:
        recipient = eligible[mail.rcpt_tos[0]]
        assert mail.mail_from == "test@test.com"
        assert mail.message["From"] == "test@test.com"
        assert mail.subject == f"Hi {recipient.name}"
        text, footer = mail.body.split("\n\n--\n")
        assert text == f"Dear {recipient.name} {recipient.last_name} ({recipient.username})"
        assert footer.startswith("Unsubscribe: ") and f"/u/{campaign_id}.{recipient.pk}:" in footer
        assert mail.message_id == f"<campaign-{campaign_id}.recipient-{recipient.pk}@commsplatform.local>"
    assert "quiet@example.com" not in {m.rcpt_tos[0] for m in mails}
    statuses = Counter(Delivery.objects.filter(campaign_id=campaign_id).values_list("channel", "status"))
    assert statuses == {("email", "sent"): 100, ("email", "skipped"): 2, ("sms", "not_configured"): 102}


def test_kill_9_of_the_sender_mid_campaign_then_restart(api_client, smtp_server, worker_process):
    # given: a slowed-down sender (rate limit) so the kill lands mid-campaign
    recipients_generate(count=300, seed=4)
    workers = _start_workers(worker_process, EMAIL_RATE_LIMIT_PER_S="150", EMAIL_RATE_BURST="5")
    campaign_id = _create_campaign(api_client)
    wait_until(lambda: len(smtp_server.messages) >= 60, timeout=60)

    # when
    workers.kill()
    assert Delivery.objects.filter(campaign_id=campaign_id, status="sent").count() < 300
    _start_workers(worker_process)

    # then
    campaign = wait_until(_finished(campaign_id), timeout=90)
    assert campaign.status == "completed"
    assert (campaign.recipients_count, campaign.sent_count, campaign.failed_count) == (300, 300, 0)
    rows = Delivery.objects.filter(campaign_id=campaign_id)
    assert rows.count() == 300 and rows.filter(status="sent").count() == 300
    assert rows.values("recipient_id").distinct().count() == 300
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert set(received) == set(Recipient.objects.values_list("email", flat=True))
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= DUPLICATE_BOUND


def test_temporary_refusal_then_recovery_completes(api_client, smtp_server, worker_process):
    # given: the server answers 451 to everything until told otherwise
    recipients_generate(count=30, seed=5)
    smtp_server.refuse_all(code=451)
    _start_workers(worker_process)
    campaign_id = _create_campaign(api_client)
    wait_until(
        lambda: Delivery.objects.filter(campaign_id=campaign_id, smtp_code=451, attempts__gte=2).count() >= 5,
        timeout=60,
    )
    assert smtp_server.messages == []

    # when: it recovers
    smtp_server.accept_all()

    # then
    campaign = wait_until(_finished(campaign_id), timeout=60)
    assert campaign.status == "completed"
    assert (campaign.sent_count, campaign.failed_count) == (30, 0)
    assert Counter(m.rcpt_tos[0] for m in smtp_server.messages) == Counter(
        set(Recipient.objects.values_list("email", flat=True))
    )
    assert Delivery.objects.filter(campaign_id=campaign_id, status="sent").count() == 30


def test_permanent_refusal_fails_one_recipient_and_retry_sends_only_it(api_client, smtp_server, worker_process):
    # given
    recipients_generate(count=20, seed=6)
    refused = Recipient.objects.order_by("pk").first()
    smtp_server.refuse_address(refused.email, code=550)
    _start_workers(worker_process)

    # when
    campaign_id = _create_campaign(api_client)

    # then
    campaign = wait_until(_finished(campaign_id), timeout=60)
    assert campaign.status == "completed_with_failures"
    assert (campaign.sent_count, campaign.failed_count) == (19, 1)
    failed = Delivery.objects.get(campaign_id=campaign_id, status="failed")
    assert (failed.recipient_id, failed.smtp_code, failed.attempts) == (refused.pk, 550, 1)
    assert len(smtp_server.messages) == 19
    assert refused.email not in {m.rcpt_tos[0] for m in smtp_server.messages}

    # when: the failed recipients are retried
    smtp_server.accept_all()
    response = api_client.post(f"/api/v1/campaigns/{campaign_id}/retry-failed/")

    # then: a 5xx is a hard failure, not retryable: nothing is sent again
    assert response.json() == {"retried": 0}
    assert Campaign.objects.get(pk=campaign_id).status == "completed_with_failures"
    assert len(smtp_server.messages) == 19


def test_retry_failed_sends_again_only_the_4xx_failures(api_client, smtp_server, worker_process):
    # given: one address refused 451 until its single attempt is used up
    recipients_generate(count=10, seed=16)
    refused = Recipient.objects.order_by("pk").first()
    smtp_server.refuse_address(refused.email, code=451)
    _start_workers(worker_process, EMAIL_MAX_ATTEMPTS="1")
    campaign_id = _create_campaign(api_client)
    campaign = wait_until(_finished(campaign_id), timeout=60)
    assert (campaign.status, campaign.sent_count, campaign.failed_count) == ("completed_with_failures", 9, 1)

    # when the server recovers and the failed recipients are retried
    smtp_server.accept_all()
    response = api_client.post(f"/api/v1/campaigns/{campaign_id}/retry-failed/")

    # then only that one is sent
    assert response.json() == {"retried": 1}
    campaign = wait_until(lambda: Campaign.objects.filter(pk=campaign_id, status="completed").first(), timeout=30)
    assert (campaign.sent_count, campaign.failed_count) == (10, 0)
    assert len(smtp_server.messages) == 10
    assert smtp_server.messages[-1].rcpt_tos == (refused.email,)


def test_pause_kill_9_and_resume_sends_each_recipient_exactly_once(api_client, smtp_server, worker_process):
    # given: a rate-limited campaign under way
    recipients_generate(count=200, seed=17)
    workers = _start_workers(worker_process, EMAIL_RATE_LIMIT_PER_S="100", EMAIL_RATE_BURST="5")
    campaign_id = _create_campaign(api_client)
    wait_until(lambda: len(smtp_server.messages) >= 20, timeout=60)

    # when it is paused, sending stops (what a thread held finishes), and the sender is killed -9
    assert api_client.post(f"/api/v1/campaigns/{campaign_id}/pause/").json()["status"] == "paused"
    wait_until(lambda: not Delivery.objects.filter(campaign_id=campaign_id, status="sending").exists(), timeout=30)
    sent_while_paused = len(smtp_server.messages)
    workers.kill()
    assert sent_while_paused < 200
    assert Delivery.objects.filter(campaign_id=campaign_id, status="sent").count() == sent_while_paused

    # when workers start again, nothing leaves while it is paused; then it is resumed
    _start_workers(worker_process)
    wait_until(lambda: Campaign.objects.get(pk=campaign_id).status == "paused", timeout=5)
    assert len(smtp_server.messages) == sent_while_paused
    assert api_client.post(f"/api/v1/campaigns/{campaign_id}/resume/").json()["status"] == "sending"

    # then every recipient gets exactly one mail
    campaign = wait_until(_finished(campaign_id), timeout=90)
    assert (campaign.status, campaign.sent_count, campaign.failed_count) == ("completed", 200, 0)
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == Counter(set(Recipient.objects.values_list("email", flat=True)))


def test_consecutive_send_errors_pause_the_campaign_with_a_reason(api_client, smtp_server, worker_process):
    # given: a server that refuses everything permanently and a limit of 5 errors in a row
    recipients_generate(count=60, seed=18)
    smtp_server.refuse_all(code=554)
    _start_workers(worker_process, EMAIL_MAX_SEND_ERRORS="5")

    # when
    campaign_id = _create_campaign(api_client)

    # then it pauses itself, the reason on the API, and far from every recipient was tried
    campaign = wait_until(lambda: Campaign.objects.filter(pk=campaign_id, status="paused").first(), timeout=60)
    body = api_client.get(f"/api/v1/campaigns/{campaign_id}/").json()
    assert body["status"] == "paused"
    assert "send errors in a row (EMAIL_MAX_SEND_ERRORS=5)" in body["paused_reason"] == campaign.paused_reason
    assert Delivery.objects.filter(campaign_id=campaign_id, status="failed").count() < 60
    assert smtp_server.messages == []


def test_cancel_stops_sending(api_client, smtp_server, worker_process):
    # given
    recipients_generate(count=300, seed=8)
    _start_workers(worker_process, EMAIL_RATE_LIMIT_PER_S="60", EMAIL_RATE_BURST="5")
    campaign_id = _create_campaign(api_client)
    wait_until(lambda: len(smtp_server.messages) >= 10, timeout=60)

    # when
    response = api_client.post(f"/api/v1/campaigns/{campaign_id}/cancel/")

    # then: what was in flight finishes, nothing else is sent
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    wait_until(
        lambda: not Delivery.objects.filter(campaign_id=campaign_id, status__in=["pending", "sending"]).exists(),
        timeout=30,
    )
    sent = Delivery.objects.filter(campaign_id=campaign_id, status="sent").count()
    assert sent < 300
    assert len(smtp_server.messages) == sent
    assert Campaign.objects.get(pk=campaign_id).status == "cancelled"


def test_slow_server_outlasting_the_lease_sends_each_mail_once(api_client, smtp_server, worker_process):
    # given: 12 recipients in one entry and one chunk, a server that answers each DATA
    # after 0.25 s (the chunk takes 3 s) and a 1 s sending lease while email-retry polls
    # every 0.2 s; the second sender thread is idle, ready to take whatever is re-queued
    recipients_generate(count=12, seed=9)
    smtp_server.delay_data(0.25)
    workers = _start_workers(worker_process, EMAIL_BATCH_SIZE="12", EMAIL_SEND_CHUNK="12", EMAIL_SENDING_LEASE_S="1")

    # when: the campaign runs to its end, and the workers finish what they hold and exit
    campaign_id = _create_campaign(api_client)
    wait_until(_finished(campaign_id), timeout=60)
    assert workers.terminate() == 0

    # then: exactly one mail per recipient, each row sent once and counted once
    campaign = Campaign.objects.get(pk=campaign_id)
    assert campaign.status == "completed"
    assert (campaign.recipients_count, campaign.sent_count, campaign.failed_count) == (12, 12, 0)
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == Counter(set(Recipient.objects.values_list("email", flat=True)))
    assert Counter(m.message_id for m in smtp_server.messages).most_common(1)[0][1] == 1
    rows = Delivery.objects.filter(campaign_id=campaign_id)
    assert sorted(rows.values_list("status", "attempts")) == [("sent", 1)] * 12
