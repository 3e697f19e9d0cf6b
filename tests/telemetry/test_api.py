"""GET /api/v1/batteries/ and /api/v1/batteries/<id>/: the live state in Redis."""

from telemetry.services import readings_apply

from .factories import reading


def test_the_list_returns_every_battery_in_id_order_with_its_latest_reading(api_client):
    # given
    readings_apply(
        readings=[
            reading(battery_id=10, timestamp=1),
            reading(battery_id=2, timestamp=1),
            reading(battery_id=10, timestamp=2, voltage=401),
        ]
    )
    # when
    response = api_client.get("/api/v1/batteries/")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {
                "battery_id": 2,
                "timestamp": 1,
                "voltage": 400,
                "current": 50,
                "temperature": 25,
                "state_of_charge": 80,
                "state_of_health": 95,
            },
            {
                "battery_id": 10,
                "timestamp": 2,
                "voltage": 401,
                "current": 50,
                "temperature": 25,
                "state_of_charge": 80,
                "state_of_health": 95,
            },
        ],
    }


def test_the_list_paginates(api_client):
    # given
    readings_apply(readings=[reading(battery_id=i, timestamp=1) for i in range(1, 6)])
    # when
    response = api_client.get("/api/v1/batteries/", {"page": 2, "page_size": 2})
    # then
    body = response.json()
    assert body["count"] == 5
    assert [item["battery_id"] for item in body["results"]] == [3, 4]


def test_one_battery(api_client):
    # given
    readings_apply(readings=[reading(battery_id=7, timestamp=9, temperature=-12)])
    # when
    response = api_client.get("/api/v1/batteries/7/")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "battery_id": 7,
        "timestamp": 9,
        "voltage": 400,
        "current": 50,
        "temperature": -12,
        "state_of_charge": 80,
        "state_of_health": 95,
    }


def test_an_unknown_battery_is_a_json_404(api_client):
    # when
    response = api_client.get("/api/v1/batteries/99/")
    # then
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "title": "Not Found",
        "description": "No reading for battery 99.",
    }


def test_an_anonymous_caller_is_refused(anon_client):
    # given
    readings_apply(readings=[reading(battery_id=1)])
    # when
    response = anon_client.get("/api/v1/batteries/")
    # then
    assert response.status_code == 401
    assert "battery_id" not in response.content.decode()


def test_redis_down_is_a_503(api_client, own_redis_server):
    # given
    own_redis_server.kill()
    # when
    list_response = api_client.get("/api/v1/batteries/")
    detail_response = api_client.get("/api/v1/batteries/1/")
    # then
    assert list_response.status_code == 503
    assert list_response.json()["description"] == "The telemetry store is unavailable; retry shortly."
    assert detail_response.status_code == 503
