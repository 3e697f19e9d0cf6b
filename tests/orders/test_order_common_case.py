"""POST /order's common case (a token the process has verified, a plain body) skips DRF's
machinery; it must answer exactly as the DRF path does, write the same, and throttle the
same shared budget."""

import pytest
import requests
from rest_framework.authtoken.models import Token

from orders.models import Order
from orders.services import shop_reset_to_seed
from tests.helpers import subprocess_environment
from tests.weather.conftest import WebProcess

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web_process():
    process = WebProcess(subprocess_environment({"THROTTLE_USER": "4/minute"}), threads=2)
    yield process
    print(process.output())
    process.close()


@pytest.fixture
def token(api_user):
    shop_reset_to_seed()
    return {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}


def _placed_events(redis_client) -> list[str]:
    return [f["payload"] for _, f in redis_client.xrange("orders") if f["type"] == "orders.order.placed"]


def test_the_cached_token_answer_matches_the_drf_answer_and_the_budget_is_shared(web_process, token, redis_client):
    url = f"{web_process.url}/order"
    # given: the first call verifies the token (the DRF path), the next ones find it cached
    first = requests.post(url, json={"product_ids": ["201", "204"], "customer_id": "101"}, headers=token, timeout=10)
    second = requests.post(url, json={"product_ids": ["201", "204"], "customer_id": "101"}, headers=token, timeout=10)
    third = requests.post(url, data=b'{"customer_id": 102, "product_ids": [202, 202]}', headers=token, timeout=10)
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    orders = {o.pk: o for o in Order.objects.all()}
    for response in (first, second):
        order = orders[int(response.json()["id"])]
        assert response.json() == {
            "id": str(order.pk),
            "product_ids": ["201", "204"],
            "customer_id": "101",
            "status": "pending",
        }
        assert (order.customer_id, order.product_ids, order.idempotency_key) == (101, [201, 204], None)
    assert third.json()["product_ids"] == ["202", "202"] and third.json()["customer_id"] == "102"
    for cached in (second, third):
        for header in ("Content-Type", "Vary", "Allow", "X-Frame-Options", "X-Content-Type-Options"):
            assert cached.headers.get(header) == first.headers.get(header), header
    assert [p.split(',"customer_id"')[0] for p in _placed_events(redis_client)] == [
        f'{{"order_id":{r.json()["id"]}' for r in (first, second, third)
    ]
    # when: an unknown product on the cached path, then a fifth request within the minute
    unknown = requests.post(url, json={"product_ids": ["299"], "customer_id": "101"}, headers=token, timeout=10)
    refused = requests.post(url, json={"product_ids": ["201"], "customer_id": "101"}, headers=token, timeout=10)
    # then: the DRF path's 400 and 429, and nothing written
    assert unknown.status_code == 400, unknown.text
    assert unknown.json()["errors"] == {"product_ids": ["Unknown products: 299."]}
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 120
    assert (refused.json()["status"], refused.json()["title"]) == (429, "Too Many Requests")
    assert Order.objects.count() == 3
    assert len(_placed_events(redis_client)) == 3


def test_what_the_serializer_would_judge_or_an_idempotency_key_goes_through_the_drf_path(
    web_process, token, redis_client
):
    url = f"{web_process.url}/order"
    assert requests.post(url, json={"product_ids": [201], "customer_id": 101}, headers=token, timeout=10).ok
    # when: cached token, but a bool id, a padded string id, and an Idempotency-Key
    bad = requests.post(url, json={"product_ids": [True], "customer_id": 101}, headers=token, timeout=10)
    padded = requests.post(url, json={"product_ids": [" 202 "], "customer_id": "101"}, headers=token, timeout=10)
    keyed = requests.post(
        url, json={"product_ids": [203], "customer_id": 101}, headers={**token, "Idempotency-Key": "k1"}, timeout=10
    )
    # then: refused as DRF refuses, taken as DRF takes it, the key stored
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"product_ids"}
    assert padded.status_code == 200 and padded.json()["product_ids"] == ["202"]
    assert keyed.status_code == 200
    assert Order.objects.get(pk=int(keyed.json()["id"])).idempotency_key == "k1"
    assert Order.objects.count() == 3
