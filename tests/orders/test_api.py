"""The HTTP side: seed routes, clean routes, validation, auth, Idempotency-Key."""

import pytest

from accounts.models import Account
from inventory.models import Product
from orders.models import Order
from orders.services import shop_reset_to_seed
from workers.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def seed_shop(db):
    shop_reset_to_seed()


def test_post_order_answers_the_pending_order_as_the_seed_did(
    api_client, seed_shop, django_capture_on_commit_callbacks, redis_client
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/order", {"product_ids": ["201", "204"], "customer_id": "101"}, format="json")
    # then
    assert response.status_code == 200
    order = Order.objects.get()
    assert response.json() == {
        "id": str(order.pk),
        "product_ids": ["201", "204"],
        "customer_id": "101",
        "status": "pending",
    }
    entries = redis_client.xrange("orders")
    assert [fields["type"] for _, fields in entries] == ["orders.order.placed"]
    assert '"lines":{"201":1,"204":1}' in entries[0][1]["payload"]


def test_post_order_accepts_numbers_and_any_content_type(api_client, seed_shop):
    response = api_client.post(
        "/order", data=b'{"product_ids": [201, 201], "customer_id": 102}', content_type="text/plain"
    )
    assert response.status_code == 200
    assert response.json()["product_ids"] == ["201", "201"]
    assert response.json()["customer_id"] == "102"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"product_ids": ["201", "299"], "customer_id": "101"}, "product_ids"),
        ({"product_ids": ["201"], "customer_id": "199"}, "customer_id"),
        ({"product_ids": [], "customer_id": "101"}, "product_ids"),
        ({"product_ids": ["abc"], "customer_id": "101"}, "product_ids"),
        ({"product_ids": "201", "customer_id": "101"}, "product_ids"),
        ({"product_ids": ["201"], "customer_id": True}, "customer_id"),
        ({"customer_id": "101"}, "product_ids"),
    ],
)
def test_bad_or_unknown_ids_are_400_and_nothing_is_placed(api_client, seed_shop, redis_client, body, field):
    response = api_client.post("/order", body, format="json")
    assert response.status_code == 400
    assert response.json()["status"] == 400
    assert field in response.json()["errors"]
    assert not Order.objects.exists()
    assert not OutboxEvent.objects.exists()
    assert redis_client.exists("orders") == 0


def test_orders_need_authentication(anon_client, seed_shop):
    response = anon_client.post("/order", {"product_ids": ["201"], "customer_id": "101"}, format="json")
    assert response.status_code in (401, 403)
    assert anon_client.get("/report").status_code in (401, 403)
    assert not Order.objects.exists()


def test_init_data_is_staff_only_and_resets_products_and_accounts(api_client, staff_client, seed_shop):
    # given changed data
    Product.objects.filter(pk=201).update(stock=0)
    Account.objects.filter(pk=101).update(balance=5)
    # when a non-staff user asks, nothing changes
    assert api_client.post("/init-data").status_code == 403
    assert Product.objects.get(pk=201).stock == 0
    # when staff asks, the seed data is back
    response = staff_client.post("/init-data")
    assert response.status_code == 200
    assert Product.objects.get(pk=201).stock == 4
    assert Account.objects.get(pk=101).balance == 1000
    assert Product.objects.count() == 5  # 204 once, not twice


def test_report_has_accounts_inventory_and_orders_with_numbers_as_numbers(api_client, seed_shop):
    order, _ = Order.objects.get_or_create(customer_id=101, product_ids=[201, 204])
    response = api_client.get("/report")
    assert response.status_code == 200
    assert response.json() == {
        "accounts": [
            {"id": "101", "name": "Anthony", "balance": 1000},
            {"id": "102", "name": "Becky", "balance": 100},
            {"id": "103", "name": "Carol", "balance": 1000},
        ],
        "inventory": [
            {"id": "201", "name": "Denon Speakers", "price": 800, "stock": 4},
            {"id": "202", "name": "Sonos Speakers", "price": 600, "stock": 7},
            {"id": "203", "name": "AudioPro Speakers", "price": 400, "stock": 4},
            {"id": "204", "name": "Google Home Mini", "price": 100, "stock": 3},
            {"id": "205", "name": "Xiaomi Soundbar", "price": 300, "stock": 8},
        ],
        "orders": [
            {
                "id": str(order.pk),
                "product_ids": ["201", "204"],
                "customer_id": "101",
                "status": "pending",
                "total": None,
            }
        ],
    }


def test_clean_routes_place_list_and_show_orders_products_accounts(api_client, seed_shop):
    created = api_client.post("/api/v1/orders/", {"product_ids": [203], "customer_id": 103}, format="json")
    assert created.status_code == 201
    order_id = created.json()["id"]
    assert created.json()["status"] == "pending"
    assert api_client.get(f"/api/v1/orders/{order_id}/").json()["message"] is None
    listed = api_client.get("/api/v1/orders/?customer_id=103&status=pending").json()
    assert [o["id"] for o in listed["results"]] == [order_id]
    assert api_client.get("/api/v1/orders/?status=completed").json()["count"] == 0
    assert api_client.get("/api/v1/orders/999999/").status_code == 404
    assert api_client.get("/api/v1/products/").json()["count"] == 5
    assert api_client.get("/api/v1/products/204/").json()["stock"] == 3
    assert api_client.get("/api/v1/accounts/102/").json()["balance"] == 100
    assert api_client.get("/api/v1/accounts/").json()["count"] == 3


def test_idempotency_key_same_body_returns_the_same_order(api_client, seed_shop):
    body = {"product_ids": ["201", "204"], "customer_id": "101"}
    first = api_client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api_client.post(
        "/api/v1/orders/",
        {"customer_id": 101, "product_ids": [201, 204]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1
    assert OutboxEvent.objects.count() == 1  # one placed event (sent after commit)


def test_idempotency_key_with_another_body_is_422_and_places_nothing(api_client, seed_shop):
    api_client.post(
        "/api/v1/orders/",
        {"product_ids": [201], "customer_id": 101},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    response = api_client.post(
        "/api/v1/orders/",
        {"product_ids": [202], "customer_id": 101},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    assert response.status_code == 422
    assert response.json()["status"] == 422
    assert list(Order.objects.values_list("product_ids", flat=True)) == [[201]]


def test_idempotency_keys_are_per_user(api_client, staff_client, seed_shop):
    body = {"product_ids": [201], "customer_id": 101}
    a = api_client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    b = staff_client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
