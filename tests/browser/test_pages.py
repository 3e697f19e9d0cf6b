"""The docs and the admin in a real headless chromium with no internet: every page
renders from our own server alone, with no console error and no failed load."""

import pytest
from django.test import Client

from campaigns.models import Campaign
from notifications.models import Delivery

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.django_db(transaction=True)

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _foreign(urls: list[str], live_server) -> list[str]:
    return [url for url in urls if not url.startswith((live_server.url, "data:", "about:"))]


def test_the_browser_really_has_no_internet(page, live_server):
    # a check of the test itself: a load from another host fails
    page.open(live_server.url + "/healthz")
    outcome = page.evaluate(
        "fetch('https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css').then(() => 'loaded', e => 'failed')"
    )
    assert outcome == "failed"


def test_swagger_ui_renders_every_operation_offline(page, live_server):
    # given the schema's operations
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = sum(1 for item in schema["paths"].values() for method in item if method in METHODS)
    assert operations > 20
    # when the docs page opens
    page.open(live_server.url + "/api/docs/")
    rendered = page.wait_for_js(
        f"document.querySelectorAll('.opblock').length >= {operations} && document.querySelectorAll('.opblock').length"
    )
    page.screenshot(SCREENSHOTS / "api-docs.png")
    # then one block per operation, everything from our server, nothing went wrong
    assert rendered == operations
    assert page.evaluate("typeof SwaggerUIBundle") == "function"
    assert _foreign(page.requested_urls(), live_server) == []
    assert page.problems() == []


def test_admin_index_renders_without_errors(admin_page, live_server):
    admin_page.open(live_server.url + "/admin/")
    admin_page.screenshot(SCREENSHOTS / "admin-index.png")
    assert admin_page.evaluate("document.querySelector('#site-name').textContent.trim()") != ""
    assert admin_page.evaluate("!!document.querySelector('a[href=\"/admin/workers/outboxevent/streams/\"]')")
    assert _foreign(admin_page.requested_urls(), live_server) == []
    assert admin_page.problems() == []


def test_streams_page_fits_a_narrow_window(admin_page, live_server, redis_client):
    # given streams with groups, seen in a 900 px wide window
    redis_client.xgroup_create("campaign", "campaign", id="$", mkstream=True)
    redis_client.xadd("campaign", {"type": "campaigns.campaign.queued"})
    admin_page.session.call(
        "Emulation.setDeviceMetricsOverride", width=900, height=900, deviceScaleFactor=1, mobile=False
    )
    # when the streams page opens
    admin_page.open(live_server.url + "/admin/workers/outboxevent/streams/")
    admin_page.screenshot(SCREENSHOTS / "admin-streams.png")
    # then nothing sticks out past the window, and nothing failed
    assert admin_page.evaluate("document.querySelectorAll('.streams-scroll table').length") == 3
    assert admin_page.evaluate("document.documentElement.scrollWidth") <= 900
    assert admin_page.problems() == []


def test_campaign_change_page_shows_progress_and_buttons(admin_page, live_server):
    # given a campaign 0.4 % through its expected deliveries, with one failure
    campaign = Campaign.objects.create(
        name="Spring sale",
        subject="Hi {{ name }}",
        body="Dear {{ name }}",
        from_email="news@example.com",
        channels=["email"],
        status=Campaign.Status.SENDING,
        deliveries_expected=1000,
        recipients_count=40,
        sent_count=3,
        failed_count=1,
    )
    Delivery.objects.create(campaign=campaign, address="a@example.com", status="failed", smtp_code=451)
    # when its change page opens
    admin_page.open(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    admin_page.screenshot(SCREENSHOTS / "admin-campaign-change.png")
    # then the label is readable beside the bar, and Cancel / Retry failed are there
    label = admin_page.evaluate("document.querySelector('.campaign-progress-label').innerText")
    assert label == "0.4% · 4 of 1000 (expected)"
    assert admin_page.evaluate("[...document.querySelectorAll('.object-tools button')].map(b => b.innerText)") == [
        "PAUSE",
        "CANCEL CAMPAIGN",
        "RETRY 1 FAILED",
        "SEND TEST",
    ]
    assert admin_page.evaluate("!!document.querySelector('[name=subject]')") is False
    assert admin_page.problems() == []
    # and when Cancel is pressed (a real POST with the CSRF token)
    admin_page.evaluate("document.querySelector('.object-tools button.danger').click()")
    admin_page.wait_for(lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.CANCELLED, "cancel")
    admin_page.wait_for_js("!!document.querySelector('.messagelist .success')")
    admin_page.screenshot(SCREENSHOTS / "admin-campaign-cancelled.png")
    assert admin_page.problems() == []
