"""Campaign admin: progress against a denominator known at fan-out start, the change
page's Send / Cancel / Retry-failed buttons (POST + CSRF, the same services as the API),
and the content fields read-only once a campaign may be sending."""

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client

from campaigns.models import Campaign
from campaigns.services import campaign_create, campaign_fanout
from notifications.models import Delivery
from notifications.services import deliveries_route
from users.models import Recipient
from users.selectors import recipient_id_chunk
from users.services import recipients_generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(staff_user):
    staff_user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_campaign", "change_campaign", "view_delivery"])
    )
    client = Client()
    client.force_login(staff_user)
    return client


def _campaign(**fields) -> Campaign:
    defaults = {"name": "Spring", "subject": "Hi {{ name }}", "body": "Dear {{ name }}", "from_email": "a@b.c"}
    return Campaign.objects.create(**{**defaults, **fields})


def test_progress_during_fan_out_never_goes_backwards(redis_client, settings):
    # given 30 recipients (all opted out, so routing finishes every delivery at once) and
    # a campaign fanned out in 3 batches of 10
    settings.CAMPAIGN_FANOUT_CHUNK = 10
    recipients_generate(count=30, seed=1)
    Recipient.objects.update(opted_out=True)
    campaign = campaign_create(name="Spring", subject="Hi", body="Dear {{ name }}", channels=["email", "sms"])
    campaign_fanout(campaign_id=campaign.pk)
    assert Campaign.objects.get(pk=campaign.pk).deliveries_expected == 60
    # when the router applies the batches one by one
    seen = []
    cursor = 0
    for _ in range(3):
        ids = recipient_id_chunk(after_id=cursor, size=10)
        cursor = ids[-1]
        with transaction.atomic():
            deliveries_route(campaign_id=campaign.pk, recipient_ids=ids)
        seen.append(Campaign.objects.get(pk=campaign.pk).progress_percent)
    # then progress is a share of the 60 expected deliveries, not of those routed so far
    assert seen == [33.3, 66.7, 100.0]


def test_progress_label_sits_beside_the_bar(operator):
    # given a campaign 1 % through its expected deliveries
    campaign = _campaign(status=Campaign.Status.SENDING, deliveries_expected=200, recipients_count=10, sent_count=2)
    # when the change list renders
    response = operator.get("/admin/campaigns/campaign/")
    # then the label is outside the filled part of the bar, with the figures
    html = response.content.decode()
    assert response.status_code == 200
    assert '<span class="campaign-progress-fill" style="width:1.0%;background:#417690"></span></span>' in html
    assert '<span class="campaign-progress-label">1.0% · 2 of 200 (expected)</span>' in html
    assert campaign.progress_percent == 1.0


def test_change_page_of_a_sending_campaign_has_cancel_pause_and_retry_buttons(operator):
    # given a sending campaign with one retryable (451) and one hard (550) failure
    campaign = _campaign(status=Campaign.Status.SENDING, failed_count=2)
    Delivery.objects.create(campaign=campaign, address="a@example.com", status="failed", smtp_code=451)
    Delivery.objects.create(
        campaign=campaign, address="b@example.com", status="failed", smtp_code=550, smtp_response="5.1.1 no such user"
    )
    # when its change page renders
    html = operator.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    # then Cancel, Pause and Retry failed (the retryable one only) are POST forms with a CSRF token; no Send
    assert f'<form method="post" action="/admin/campaigns/campaign/{campaign.pk}/cancel/">' in html
    assert f'<form method="post" action="/admin/campaigns/campaign/{campaign.pk}/pause/">' in html
    assert f'<form method="post" action="/admin/campaigns/campaign/{campaign.pk}/retry-failed/">' in html
    assert f'<form method="post" action="/admin/campaigns/campaign/{campaign.pk}/send-test/">' in html
    assert "Retry 1 failed</button>" in html
    assert "b@example.com — 550 5.1.1 no such user (not retryable)" in html
    assert "sent: 0 · failed: 2 · bounced: 0 · unsubscribed: 0 · skipped: 0" in html
    assert f"/admin/campaigns/campaign/{campaign.pk}/send/" not in html
    assert html.count('name="csrfmiddlewaretoken"') >= 3  # two buttons + the change form


def test_cancel_button_cancels_the_campaign_and_its_unsent_deliveries(operator):
    # given a sending campaign with one pending delivery
    campaign = _campaign(status=Campaign.Status.SENDING)
    delivery = Delivery.objects.create(campaign=campaign, address="x@example.com")
    # when the operator presses Cancel
    response = operator.post(f"/admin/campaigns/campaign/{campaign.pk}/cancel/")
    # then the campaign is cancelled through the service, back on its change page
    assert response.status_code == 302
    assert response["Location"] == f"/admin/campaigns/campaign/{campaign.pk}/change/"
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.CANCELLED
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.CANCELLED


def test_retry_failed_button_queues_only_the_failed_recipients(operator, redis_client):
    # given a finished campaign with one failed (451, attempts used up) and one sent delivery
    campaign = _campaign(
        status=Campaign.Status.COMPLETED_WITH_FAILURES, recipients_count=2, failed_count=1, sent_count=1
    )
    failed = Delivery.objects.create(
        campaign=campaign, address="f@example.com", status=Delivery.Status.FAILED, smtp_code=451
    )
    sent = Delivery.objects.create(campaign=campaign, address="s@example.com", status=Delivery.Status.SENT)
    # when the operator presses Retry failed
    response = operator.post(f"/admin/campaigns/campaign/{campaign.pk}/retry-failed/")
    # then only the failed delivery is pending again and the campaign is sending
    assert response.status_code == 302
    assert Delivery.objects.get(pk=failed.pk).status == Delivery.Status.PENDING
    assert Delivery.objects.get(pk=sent.pk).status == Delivery.Status.SENT
    campaign.refresh_from_db()
    assert (campaign.status, campaign.failed_count) == (Campaign.Status.SENDING, 0)


def test_send_button_queues_a_draft(operator, redis_client):
    # given a draft
    campaign = _campaign(status=Campaign.Status.DRAFT)
    assert (
        f"/admin/campaigns/campaign/{campaign.pk}/send/"
        in operator.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    )
    # when the operator presses Send
    operator.post(f"/admin/campaigns/campaign/{campaign.pk}/send/")
    # then it is queued
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.QUEUED


def test_cancel_without_csrf_token_changes_nothing(staff_user):
    # given an operator whose browser does not send the CSRF token
    staff_user.user_permissions.add(Permission.objects.get(codename="change_campaign"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    campaign = _campaign(status=Campaign.Status.SENDING)
    # when it posts to Cancel
    response = client.post(f"/admin/campaigns/campaign/{campaign.pk}/cancel/")
    # then the request is refused and the campaign still sends
    assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING


@pytest.mark.parametrize("method", ["get", "head"])
def test_cancel_by_get_changes_nothing(operator, method):
    campaign = _campaign(status=Campaign.Status.SENDING)
    response = getattr(operator, method)(f"/admin/campaigns/campaign/{campaign.pk}/cancel/")
    assert response.status_code == 405
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING


def test_cancel_without_change_permission_changes_nothing(staff_user):
    # given a staff user who may only view campaigns
    staff_user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client = Client()
    client.force_login(staff_user)
    campaign = _campaign(status=Campaign.Status.SENDING)
    # when it posts to Cancel
    response = client.post(f"/admin/campaigns/campaign/{campaign.pk}/cancel/")
    # then it is forbidden, and its change page shows no buttons
    assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING
    assert "/cancel/" not in client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()


def test_subject_and_body_are_read_only_once_not_a_draft(operator):
    # given a sending campaign
    campaign = _campaign(status=Campaign.Status.SENDING)
    url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    html = operator.get(url).content.decode()
    assert 'name="subject"' not in html and 'name="body"' not in html
    # when the operator posts a new subject and body anyway
    operator.post(url, {"name": "Renamed", "subject": "Changed", "body": "Changed"})
    # then only the name changed
    campaign.refresh_from_db()
    assert (campaign.name, campaign.subject, campaign.body) == ("Renamed", "Hi {{ name }}", "Dear {{ name }}")


def test_subject_and_body_are_editable_on_a_draft(operator):
    campaign = _campaign(status=Campaign.Status.DRAFT)
    html = operator.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert 'name="subject"' in html and 'name="body"' in html
