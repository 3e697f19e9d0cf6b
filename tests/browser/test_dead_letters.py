"""The admin's dead-letters pages in a real headless chromium: from the streams page to the
list, two entries checked, the confirmation screen, and the redrive it confirms (a real
POST with the CSRF token), with no console error."""

import time

import pytest

from workers.deadletter import dead_letter_stream, stream_dead_letter
from workers.events import Event
from workers.models import OperatorAction

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "email-notification"
DLQ = dead_letter_stream(STREAM)


def _dead_letter(redis_client, n: int, error: str) -> str:
    event = Event(type="notifications.email.requested", payload={"recipient": n, "campaign": 7})
    fields = stream_dead_letter(
        event.to_fields(),
        error=error,
        attempts=5,
        stream=STREAM,
        group="email-notification",
        entry_id=f"{int(time.time() * 1000)}-{n}",
        consumer="email-sender",
    )
    return redis_client.xadd(DLQ, fields)


def _follow(page, click_js: str) -> None:
    """Click something that navigates, and wait for the new page's load event."""
    loads = sum(1 for e in page.session.events if e["method"] == "Page.loadEventFired")
    page.evaluate(click_js)
    page.wait_for(lambda: sum(1 for e in page.session.events if e["method"] == "Page.loadEventFired") > loads, click_js)


def test_an_operator_redrives_two_dead_letters_through_the_confirmation_page(admin_page, live_server, redis_client):
    # given three dead letters of the email sender
    ids = [
        _dead_letter(redis_client, 1, "SMTPRecipientsRefused: 550 5.1.1 no such user"),
        _dead_letter(redis_client, 2, "SMTPServerDisconnected: Connection unexpectedly closed"),
        _dead_letter(redis_client, 3, "SMTPServerDisconnected: Connection unexpectedly closed"),
    ]
    # when the operator follows the streams page's dead-letter count
    admin_page.open(live_server.url + "/admin/workers/outboxevent/streams/")
    link = f"/admin/workers/outboxevent/streams/{STREAM}/dead-letters/"
    assert admin_page.evaluate(f"document.querySelector('a[href=\"{link}\"]').textContent") == "3"
    _follow(admin_page, f"document.querySelector('a[href=\"{link}\"]').click()")
    # then the list shows them newest first
    rows = admin_page.evaluate("[...document.querySelectorAll('.dlq-select')].map(b => b.value)")
    assert rows == ids[::-1]
    admin_page.screenshot(SCREENSHOTS / "admin-dead-letters.png")
    # when two are checked and "Redrive selected" pressed
    admin_page.evaluate(
        f"document.querySelector('.dlq-select[value=\"{ids[1]}\"]').checked = true;"
        f"document.querySelector('.dlq-select[value=\"{ids[2]}\"]').checked = true;"
    )
    _follow(admin_page, "document.querySelector('button[value=\"redrive-selected\"]').click()")
    # then the confirmation lists exactly those two (as the list showed them), and nothing has moved yet
    summary = admin_page.evaluate("document.querySelector('#dlq-confirm-summary').innerText")
    assert summary.startswith("These 2 dead letters will be put back on email-notification")
    assert admin_page.evaluate("[...document.querySelectorAll('#dlq-confirm [name=ids]')].map(i => i.value)") == [
        ids[2],
        ids[1],
    ]
    assert redis_client.xlen(DLQ) == 3 and OperatorAction.objects.count() == 0
    admin_page.screenshot(SCREENSHOTS / "admin-dead-letters-confirm.png")
    # when confirmed
    _follow(admin_page, "document.querySelector('#dlq-confirm [type=submit]').click()")
    # then they are back on the stream, the third is still dead, and the action is on record
    assert admin_page.evaluate("document.querySelector('.messagelist .success').innerText") == (
        "Redrove 2 dead letter(s) of email-notification."
    )
    assert [i for i, _ in redis_client.xrange(DLQ)] == [ids[0]]
    assert [f["redrive_count"] for _, f in redis_client.xrange(STREAM)] == ["1", "1"]
    assert list(OperatorAction.objects.values_list("actor", "action", "selection", "affected")) == [
        ("root", "redrive", {"ids": [ids[2], ids[1]]}, 2)
    ]
    admin_page.screenshot(SCREENSHOTS / "admin-dead-letters-done.png")
    assert admin_page.problems() == []
