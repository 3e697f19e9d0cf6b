"""Fenced claims: a sender whose lease ran out and whose rows another
sender re-claimed changes nothing and stops; only the current holder's outcome counts.

Senders are driven in-process, one claim at a time, against a real SMTP server; the
stall of the first sender is real time passing beyond a short lease.
"""

import time

import pytest

from campaigns.models import Campaign
from campaigns.services import campaign_cancel
from notifications.claims import deliveries_claim
from notifications.models import Delivery
from notifications.sending import _ChunkResult, _record, _send_chunk
from notifications.services import deliveries_requeue_due, message_id_for
from notifications.smtp import SmtpReply
from users.models import Recipient

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_S = 0.3


def _campaign_with_deliveries(count: int) -> tuple[Campaign, list[int]]:
    campaign = Campaign.objects.create(
        name="Fenced",
        subject="Hi {{ name }}",
        body="Hello",
        from_email="test@test.com",
        channels=["email"],
        status=Campaign.Status.SENDING,
        recipients_count=count,
    )
    ids = []
    for n in range(count):
        recipient = Recipient.objects.create(username=f"r{n}", name=f"R{n}", email=f"r{n}@example.com")
        ids.append(
            Delivery.objects.create(
                campaign=campaign,
                recipient=recipient,
                address=recipient.email,
                message_id=message_id_for(campaign_id=campaign.pk, recipient_id=recipient.pk),
            ).pk
        )
    return campaign, ids


def _stall_past_the_lease_and_let_another_sender_claim(ids):
    time.sleep(LEASE_S * 1.5)  # the first sender is frozen longer than its lease
    assert deliveries_requeue_due() == len(ids)  # the email-retry loop takes the rows back
    second = deliveries_claim(ids)
    assert second is not None and [r["pk"] for r in second.rows] == ids
    return second


def _ledger(ids):
    return list(
        Delivery.objects.filter(pk__in=ids)
        .order_by("pk")
        .values_list("status", "claim_token", "attempts", "smtp_code", "sent_at")
    )


def test_fenced_out_senders_record_changes_nothing(settings, smtp_server):
    # given: sender A claimed and sent (its mails went out), then stalled past its lease,
    # and sender B re-claimed the rows
    settings.EMAIL_SENDING_LEASE_S = LEASE_S
    campaign, ids = _campaign_with_deliveries(3)
    first = deliveries_claim(ids)
    assert first is not None
    second = _stall_past_the_lease_and_let_another_sender_claim(ids)
    before = _ledger(ids)
    a_result = _ChunkResult(sent=[(pk, SmtpReply(250, "OK")) for pk in ids], failed=[], deferred=[], unsent=[])

    # when: A wakes up and records its outcome
    recorded = _record(a_result, first, pause_s=0.0)

    # then: nothing changed; the rows are B's, in flight, uncounted
    assert (recorded.sent, recorded.campaigns, recorded.lost) == (0, set(), 3)
    assert _ledger(ids) == before
    assert {token for _, token, *_ in before} == {second.token}
    assert all(status == "sending" and sent_at is None for status, _, _, _, sent_at in before)
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.failed_count) == (0, 0)


def test_fenced_out_sender_stops_its_chunk_and_only_the_new_holder_sends(settings, smtp_server):
    # given: sender A claimed the rows and then stalled past its lease; B re-claimed them
    settings.EMAIL_SENDING_LEASE_S = LEASE_S
    campaign, ids = _campaign_with_deliveries(3)
    first = deliveries_claim(ids)
    assert first is not None
    second = _stall_past_the_lease_and_let_another_sender_claim(ids)

    # when: A carries on with its chunk, then B sends
    a_result = _send_chunk(first)
    a_recorded = _record(a_result, first, pause_s=0.0)
    a_mails = list(smtp_server.messages)
    b_recorded = _record(_send_chunk(second), second, pause_s=0.0)

    # then: A noticed, sent nothing and changed nothing; B's outcome is the one counted
    assert a_result.claim_lost and a_result.sent == [] and a_result.unsent == ids
    assert (a_recorded.sent, a_recorded.lost) == (0, 3)
    assert a_mails == []
    assert (b_recorded.sent, b_recorded.lost) == (3, 0)
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == ["r0@example.com", "r1@example.com", "r2@example.com"]
    assert [(s, token, attempts) for s, token, attempts, _, _ in _ledger(ids)] == [("sent", second.token, 2)] * 3
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.failed_count) == (3, 0)


def test_a_live_sender_renews_its_lease_so_the_retry_loop_leaves_its_rows_alone(settings, smtp_server):
    # given: a server that takes 0.3 s per message, a 1 s lease and a 5-message chunk
    settings.EMAIL_SENDING_LEASE_S = 1.0
    smtp_server.delay_data(0.3)
    campaign, ids = _campaign_with_deliveries(5)
    claim = deliveries_claim(ids)
    assert claim is not None

    # when: the chunk takes longer than the lease
    result = _send_chunk(claim)
    requeued_meanwhile = deliveries_requeue_due()
    recorded = _record(result, claim, pause_s=0.0)

    # then: its claim held to the end
    assert not result.claim_lost and requeued_meanwhile == 0
    assert (recorded.sent, recorded.lost) == (5, 0)
    assert len(smtp_server.messages) == 5
    campaign.refresh_from_db()
    assert campaign.sent_count == 5


def test_rows_of_a_cancelled_campaign_whose_sender_died_are_never_sent(settings, smtp_server):
    # given: a sender claimed two rows and died; then the campaign was cancelled (the
    # rows it held stay `sending`: a live sender might still be recording them)
    settings.EMAIL_SENDING_LEASE_S = LEASE_S
    campaign, ids = _campaign_with_deliveries(2)
    assert deliveries_claim(ids) is not None
    campaign_cancel(campaign_id=campaign.pk)
    time.sleep(LEASE_S * 1.5)

    # when: another sender gets the ids once their lease ran out
    claimed = deliveries_claim(ids)

    # then: the ledger does not hand them out (the campaign is not sending), no mail left
    assert claimed is None
    assert [status for status, *_ in _ledger(ids)] == [Delivery.Status.SENDING] * 2
    assert smtp_server.messages == []
    assert Campaign.objects.values_list("status", "sent_count", "failed_count").get(pk=campaign.pk) == (
        Campaign.Status.CANCELLED,
        0,
        0,
    )
