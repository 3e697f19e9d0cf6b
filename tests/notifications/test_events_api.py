"""Seed 001's producer contract: POST /event and the versioned /api/v1/events/."""

import json

import pytest

from notifications.models import NotificationMessage

pytestmark = pytest.mark.django_db

STREAM = "NotificationStream"


def newest_entry(redis_client) -> dict:
    [(entry_id, fields)] = redis_client.xrevrange(STREAM, count=1)
    return {"entry_id": entry_id, **fields, "message": json.loads(fields["payload"])}


def test_post_event_writes_the_message_to_the_stream(api_client, redis_client):
    response = api_client.post("/event", {"description": "hello world"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "description", "timestamp", "stream_id"}
    assert isinstance(body["id"], int)
    assert body["description"] == "hello world"
    entry = newest_entry(redis_client)
    assert entry["entry_id"] == body["stream_id"]
    assert entry["message"] == {"id": body["id"], "description": "hello world", "timestamp": body["timestamp"]}
    assert entry["type"] == "notifications.message.published"


def test_the_seed_route_takes_a_json_body_whatever_its_content_type(api_client, redis_client):
    response = api_client.post(
        "/event", data='{"description": "from curl -d"}', content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    assert newest_entry(redis_client)["message"]["description"] == "from curl -d"


@pytest.mark.parametrize(
    ("body", "content_type", "mentions"),
    [
        ('{"description": 42}', "application/json", "description: Must be a string."),
        ('{"description": null}', "application/json", "description: This field may not be null."),
        ("{}", "application/json", "description: This field is required."),
        ("not json", "application/json", "not valid JSON"),
        ('["a list"]', "application/json", "Invalid data"),
    ],
)
def test_bad_input_is_a_400_json_error_and_writes_nothing(api_client, redis_client, body, content_type, mentions):
    response = api_client.post("/event", data=body, content_type=content_type)

    assert response.status_code == 400
    error = response.json()
    assert error["status"] == 400
    assert error["title"] == "Bad Request"
    assert mentions in error["description"]
    assert redis_client.exists(STREAM) == 0


def test_other_methods_are_405_json(api_client):
    response = api_client.get("/event")

    assert response.status_code == 405
    assert response.json() == {"status": 405, "title": "Method Not Allowed", "description": 'Method "GET" not allowed.'}


def test_unknown_paths_are_404_json(api_client):
    response = api_client.post("/event/unknown", {"description": "x"}, format="json")

    assert response.status_code == 404
    assert response.json() == {"status": 404, "title": "Not Found", "description": "No resource at /event/unknown."}


def test_an_anonymous_post_is_401_and_writes_nothing(anon_client, redis_client):
    response = anon_client.post("/event", {"description": "sneaky"}, format="json")

    assert response.status_code == 401
    assert response.json()["description"] == "Authentication credentials were not provided."
    assert redis_client.exists(STREAM) == 0


def test_while_redis_is_down_the_api_answers_503_and_recovers_by_itself(api_client, own_redis_server):
    own_redis_server.stop()

    response = api_client.post("/event", {"description": "during the outage"}, format="json")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["title"] == "Service Unavailable"
    # when Redis is back, the same process succeeds without a restart
    own_redis_server.start()
    response = api_client.post("/event", {"description": "after the outage"}, format="json")
    assert response.status_code == 200
    assert [json.loads(f["payload"])["description"] for _, f in own_redis_server.client().xrange(STREAM)] == [
        "after the outage"
    ]


def test_the_list_is_newest_first_paginated_and_searchable(api_client):
    for n, text in enumerate(["alpha one", "beta two", "alpha three"]):
        NotificationMessage.objects.create(
            event_id=f"00000000-0000-4000-8000-00000000000{n}",
            message_id=n,
            description=text,
            timestamp=f"2026-01-0{n + 1}T00:00:00Z",
            stream_id=f"{n}-0",
        )

    page = api_client.get("/api/v1/events/", {"page_size": 2}).json()
    searched = api_client.get("/api/v1/events/", {"search": "alpha"}).json()

    assert page["count"] == 3
    assert [m["description"] for m in page["results"]] == ["alpha three", "beta two"]
    assert page["next"].endswith("/api/v1/events/?page=2&page_size=2")
    assert [m["description"] for m in searched["results"]] == ["alpha three", "alpha one"]


def test_the_versioned_route_publishes_too(api_client, redis_client):
    response = api_client.post("/api/v1/events/", {"description": "v1"}, format="json")

    assert response.status_code == 200
    assert newest_entry(redis_client)["message"]["description"] == "v1"
