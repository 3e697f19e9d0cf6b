"""The dead-letter front ends over workers.deadletters: the staff API and
`manage.py deadletters`, against a real Redis and database."""

import getpass
import io
import time

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from workers.deadletter import dead_letter_stream, stream_dead_letter
from workers.events import Event
from workers.models import OperatorAction

pytestmark = pytest.mark.django_db

STREAM = "NotificationStream"
DLQ = dead_letter_stream(STREAM)
BASE = f"/api/v1/streams/{STREAM}/dead-letters/"


def dead_letter(redis_client, name: str, *, age_s: int = 0, consumer: str = "notifications", error: str = "boom"):
    """A dead letter as the consumer writes it, `age_s` seconds old; returns (DLQ id, event)."""
    event = Event(type="notifications.message.published", payload={"name": name})
    at_ms = int(time.time() * 1000) - age_s * 1000
    fields = stream_dead_letter(
        event.to_fields(),
        error=error,
        attempts=5,
        stream=STREAM,
        group="demo_consumer_group",
        entry_id=f"{at_ms - 5}-0",
        consumer=consumer,
    )
    fields["dlq_at"] = str(at_ms)
    return redis_client.xadd(DLQ, fields, id=f"{at_ms}-*"), event


def state(redis_client) -> tuple:
    return (
        [i for i, _ in redis_client.xrange(DLQ)],
        redis_client.xlen(STREAM),
        OperatorAction.objects.count(),
    )


# -- the API -------------------------------------------------------------------------------
def test_staff_list_dead_letters_newest_first_filtered_and_paginated(staff_client, redis_client):
    a, _ = dead_letter(redis_client, "a", age_s=7200, error="SMTPError 451")
    b, _ = dead_letter(redis_client, "b", age_s=600, consumer="other", error="SMTPError 550")
    c, event = dead_letter(redis_client, "c", age_s=5)

    everything = staff_client.get(BASE).json()
    page = staff_client.get(BASE, {"page_size": 2, "page": 2}).json()
    old_smtp = staff_client.get(BASE, {"error_contains": "smtp", "older_than_s": 3600}).json()
    by_consumer = staff_client.get(BASE, {"consumer": "other"}).json()

    assert [r["id"] for r in everything["results"]] == [c, b, a]
    assert everything["count"] == 3
    assert everything["results"][0] == {
        "id": c,
        "stream": STREAM,
        "original_entry_id": f"{int(c.split('-')[0]) - 5}-0",
        "event_id": event.id,
        "event_type": "notifications.message.published",
        "payload": {"name": "c"},
        "error": "boom",
        "attempts": 5,
        "consumer": "notifications",
        "group": "demo_consumer_group",
        "dead_lettered_at": everything["results"][0]["dead_lettered_at"],
        "redrive_count": 0,
    }
    assert (page["count"], [r["id"] for r in page["results"]], page["next"]) == (3, [a], None)
    assert [r["id"] for r in old_smtp["results"]] == [a]
    assert [r["id"] for r in by_consumer["results"]] == [b]


def test_staff_see_one_dead_letter_with_its_fields(staff_client, redis_client):
    dlq_id, event = dead_letter(redis_client, "one")

    body = staff_client.get(f"{BASE}{dlq_id}/").json()
    missing = staff_client.get(f"{BASE}1-0/")
    unknown_stream = staff_client.get(f"/api/v1/streams/nope/dead-letters/{dlq_id}/")

    assert (body["id"], body["event_id"], body["entry"]) == (dlq_id, event.id, event.to_fields())
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert unknown_stream.status_code == 404 and unknown_stream.json()["description"] == "no stream named 'nope'"


def test_staff_redrive_by_ids_and_by_filter_and_each_call_is_audited(staff_client, redis_client):
    a, event_a = dead_letter(redis_client, "a", age_s=7200)
    b, _ = dead_letter(redis_client, "b", age_s=600, consumer="other")
    c, _ = dead_letter(redis_client, "c", age_s=5, consumer="other")

    by_ids = staff_client.post(f"{BASE}redrive/", {"ids": [a]}, format="json")
    by_filter = staff_client.post(
        f"{BASE}redrive/", {"consumer": "other", "older_than_s": 60, "all": True}, format="json"
    )

    assert by_ids.status_code == 200
    assert {k: v for k, v in by_ids.json().items() if k != "audit_id"} == {
        "action": "redrive",
        "stream": STREAM,
        "requested": 1,
        "done": 1,
        "ids": [a],
    }
    assert (by_filter.json()["done"], by_filter.json()["ids"]) == (1, [b])
    assert [i for i, _ in redis_client.xrange(DLQ)] == [c]
    redriven = [f for _, f in redis_client.xrange(STREAM)]
    assert [(f["id"], f["redrive_count"]) for f in redriven][0] == (event_a.id, "1")
    assert len(redriven) == 2
    assert list(OperatorAction.objects.order_by("id").values_list("actor", "action", "selection", "affected")) == [
        ("staff", "redrive", {"ids": [a]}, 1),
        ("staff", "redrive", {"filter": {"consumer": "other", "older_than_s": 60.0}}, 1),
    ]


def test_staff_purge_everything(staff_client, redis_client):
    for name in "abc":
        dead_letter(redis_client, name)

    response = staff_client.post(f"{BASE}purge/", {"all": True}, format="json")

    assert (response.json()["action"], response.json()["done"]) == ("purge", 3)
    assert state(redis_client) == ([], 0, 1)


def test_a_non_staff_token_gets_403_and_nothing_changes(api_client, redis_client):
    # given a user in every role, but not staff
    dlq_id, _ = dead_letter(redis_client, "kept")
    before = state(redis_client)
    # when they try each route
    responses = [
        api_client.get(BASE),
        api_client.get(f"{BASE}{dlq_id}/"),
        api_client.post(f"{BASE}redrive/", {"ids": [dlq_id]}, format="json"),
        api_client.post(f"{BASE}purge/", {"all": True}, format="json"),
    ]
    # then
    assert [r.status_code for r in responses] == [403] * 4
    assert {r.json()["status"] for r in responses} == {403}
    assert state(redis_client) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"all": False},
        {"consumer": "notifications"},  # a filter without "all": true
        {"ids": []},
        {"ids": ["not-an-id"]},
        {"ids": "1-0"},
        {"ids": ["1-0"], "all": True},
        {"ids": ["1-0"], "consumer": "x"},
        {"all": True, "older_than_s": -1},
        {"all": True, "older_than_s": "soon"},
    ],
)
def test_a_bad_selection_is_a_400_with_the_json_error_shape_and_changes_nothing(staff_client, redis_client, body):
    dead_letter(redis_client, "kept")
    before = state(redis_client)

    for action in ("redrive", "purge"):
        response = staff_client.post(f"{BASE}{action}/", body, format="json")
        assert response.status_code == 400, (action, body)
        assert set(response.json()) >= {"status", "title", "description"}

    assert state(redis_client) == before


def test_a_bad_list_filter_is_a_400(staff_client, redis_client):
    response = staff_client.get(BASE, {"older_than_s": "yesterday"})

    assert response.status_code == 400
    assert response.json()["errors"] == {"older_than_s": ["A valid number is required."]}


# -- the command ---------------------------------------------------------------------------
def run(*args: str) -> str:
    out = io.StringIO()
    call_command("deadletters", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_command_lists_and_shows(redis_client):
    a, _ = dead_letter(redis_client, "a", age_s=600, error="SMTPError 451")
    b, event = dead_letter(redis_client, "b", consumer="other")

    listed = run("list", STREAM)
    filtered = run("list", STREAM, "--error", "smtp")
    shown = run("show", STREAM, "--id", b)

    assert [line.split()[0] for line in listed.splitlines()] == [b, a, "2"]
    assert filtered.splitlines()[-1] == "1 dead letter(s)" and filtered.startswith(a)
    assert f'"event_id": "{event.id}"' in shown and '"consumer": "other"' in shown


def test_the_command_redrives_and_purges_with_yes_and_records_the_os_user(redis_client):
    a, _ = dead_letter(redis_client, "a")
    b, _ = dead_letter(redis_client, "b", consumer="other")
    c, _ = dead_letter(redis_client, "c", consumer="other")

    redriven = run("redrive", STREAM, "--id", a, "--yes")
    purged = run("purge", STREAM, "--consumer", "other", "--yes")

    assert redriven.splitlines()[-1].startswith("1 of 1 redriven (audit #")
    assert purged.splitlines()[-1].startswith("2 of 2 purged (audit #")
    assert state(redis_client) == ([], 1, 2)
    actor = f"cli:{getpass.getuser()}"
    assert list(OperatorAction.objects.order_by("id").values_list("actor", "action", "selection", "affected")) == [
        (actor, "redrive", {"ids": [a]}, 1),
        (actor, "purge", {"filter": {"consumer": "other", "max_id": c}}, 2),
    ]


def test_the_command_without_yes_asks_and_a_no_changes_nothing(redis_client, monkeypatch):
    dead_letter(redis_client, "kept")
    before = state(redis_client)
    monkeypatch.setattr("sys.stdin", io.StringIO("no\n"))  # the operator answers "no"

    with pytest.raises(CommandError, match="not confirmed; nothing changed"):
        run("purge", STREAM)
    with pytest.raises(CommandError, match="no stream named"):
        run("redrive", "nope", "--yes")

    assert state(redis_client) == before


# -- the admin pages (the browser test walks the same pages in chromium) --------------------
ADMIN = f"/admin/workers/outboxevent/streams/{STREAM}/dead-letters/"


@pytest.fixture
def browser_session(staff_user):
    """A plain Django test client logged in as staff: form posts, as a browser sends them."""
    client = Client()
    client.force_login(staff_user)
    return client


def test_the_admin_purges_every_match_only_after_the_confirmation(browser_session, redis_client):
    kept, _ = dead_letter(redis_client, "kept", consumer="other")
    gone = [dead_letter(redis_client, name)[0] for name in "ab"]
    before = state(redis_client)

    listed = browser_session.get(ADMIN, {"consumer": "notifications"})
    asked = browser_session.post(f"{ADMIN}confirm/", {"do": "purge-matching", "consumer": "notifications"})
    after_asking = state(redis_client)
    done = browser_session.post(
        f"{ADMIN}confirm/",
        {"do": "purge-matching", "consumer": "notifications", "max_id": gone[-1], "confirmed": "yes"},
    )

    assert listed.status_code == 200 and [letter.id for letter in listed.context["page"]] == gone[::-1]
    assert [letter.id for letter in asked.context["letters"]] == gone[::-1]
    assert asked.context["wanted"].max_id == gone[-1]
    assert after_asking == before
    assert done.status_code == 302 and done["Location"] == ADMIN
    assert state(redis_client) == ([kept], 0, 1)
    row = OperatorAction.objects.get()
    assert (row.actor, row.action, row.selection, row.affected) == (
        "staff",
        "purge",
        {"filter": {"consumer": "notifications", "max_id": gone[-1]}},
        2,
    )


def test_the_admin_with_a_bad_filter_offers_no_bulk_action_and_a_get_changes_nothing(browser_session, redis_client):
    dead_letter(redis_client, "kept")
    before = state(redis_client)

    listed = browser_session.get(ADMIN, {"older_than": "soon"})
    get_confirm = browser_session.get(f"{ADMIN}confirm/", {"do": "purge-matching", "confirmed": "yes"})
    nothing_checked = browser_session.post(f"{ADMIN}confirm/", {"do": "redrive-selected", "confirmed": "yes"})

    assert listed.context["matching"] == 0 and b"purge-matching" not in listed.content
    assert get_confirm.status_code == 405
    assert nothing_checked.status_code == 302
    assert state(redis_client) == before


def test_the_audit_log_is_read_only_in_the_admin(browser_session, django_user_model, redis_client):
    browser_session.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
    dlq_id, _ = dead_letter(redis_client, "a")
    browser_session.post(f"{ADMIN}confirm/", {"do": "redrive-selected", "ids": [dlq_id], "confirmed": "yes"})
    row = OperatorAction.objects.get()

    listing = browser_session.get("/admin/workers/operatoraction/")
    change = browser_session.post(f"/admin/workers/operatoraction/{row.pk}/change/", {"actor": "someone else"})
    delete = browser_session.post(f"/admin/workers/operatoraction/{row.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200 and b"redrive" in listing.content
    assert change.status_code == 403 and delete.status_code == 403
    assert OperatorAction.objects.get().actor == "root"
