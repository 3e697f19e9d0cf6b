"""The streams page's Pause button in a real headless chromium: confirm, paused, Resume."""

import pytest

from workers.models import ConsumerPause

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.django_db(transaction=True)


def test_pausing_a_consumer_from_the_streams_page(admin_page, live_server, redis_client):
    # given the streams page
    admin_page.open(live_server.url + "/admin/workers/outboxevent/streams/")
    # when the operator clicks Pause for weather and confirms with a reason
    admin_page.evaluate("document.querySelector('#consumer-weather a.button').click()")
    admin_page.wait_for_js("!!document.querySelector('#confirm')")
    admin_page.evaluate(
        "document.querySelector('#id_reason').value = 'provider outage'; document.querySelector('#confirm').click()"
    )
    admin_page.wait_for_js("document.querySelector('#consumer-weather .state')?.innerText.startsWith('paused')")
    admin_page.screenshot(SCREENSHOTS / "admin-streams-paused.png")
    # then it is paused, by them, and the row offers Resume
    row = ConsumerPause.objects.get(name="weather")
    assert (row.paused, row.changed_by, row.reason) == (True, "admin:root", "provider outage")
    assert admin_page.evaluate("document.querySelector('#consumer-weather a.button').innerText") == "Resume"
    assert admin_page.problems() == []
