"""Bad input is a 4xx with the JSON error shape and changes nothing, on every endpoint.

The endpoints come from the OpenAPI schema, so a new one is covered without editing this
file: every operation with a JSON request body gets a deeply nested body and a 5 MB body,
every GET gets control characters in its query. PostgreSQL (the session database) is
what refused NUL in text with a 500.
"""

import hashlib
import hmac
import json

import pytest
from django.apps import apps
from django.db import connection
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

FIVE_MB = 5 * 1024 * 1024


def _operations(want, ids: dict[str, int] | None = None) -> list[tuple[str, str]]:
    """(method, path) of the schema's operations `want` picks; path parameters become the
    given ids (an object that exists, so the body is what is judged), else 1."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if want(method, operation):
                concrete = path
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path":
                        value = str((ids or {}).get(parameter["name"], 1))
                        concrete = concrete.replace("{" + parameter["name"] + "}", value)
                found.append((method, concrete))
    return sorted(found)


def json_writes(ids: dict[str, int] | None = None) -> list[tuple[str, str]]:
    return _operations(lambda method, op: "application/json" in op.get("requestBody", {}).get("content", {}), ids)


def reads() -> list[tuple[str, str]]:
    return _operations(lambda method, op: method == "get")


class _BounceSigningClient(APIClient):
    """Signs what it sends to the bounce webhook, whose signature check comes before parsing."""

    secret = b"bad-input-secret"

    def generic(self, method, path, data="", content_type="application/octet-stream", secure=False, **extra):
        if path.startswith("/api/v1/bounces/"):
            raw = data.encode() if isinstance(data, str) else data
            extra["HTTP_X_SIGNATURE"] = hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
        return super().generic(method, path, data, content_type, secure, **extra)


@pytest.fixture
def staff_token_client(staff_user, settings):
    settings.WEATHER_REPLY_TIMEOUT_S = 0.2  # no weather worker: a valid forecast request would wait
    settings.BOUNCE_WEBHOOK_SECRET = _BounceSigningClient.secret.decode()
    client = _BounceSigningClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    return client


def _side_effects(redis_client) -> dict:
    rows = {model._meta.label: model.objects.count() for model in apps.get_models()}
    streams = {key: redis_client.xlen(key) for key in redis_client.scan_iter(_type="stream")}
    return {"rows": rows, "streams": streams}


def _assert_error(response, status: int, *fragments: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json", response["Content-Type"]
    body = response.json()
    assert body["status"] == status and body["title"] and body["description"], body
    for fragment in fragments:
        assert fragment in body["description"], body
    return body


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_the_schema_lists_the_json_write_endpoints():
    # the derivation finds the API's and the seeds' writes (a sanity check of the list, not its limit)
    assert {("post", "/api/v1/campaigns/"), ("post", "/event"), ("post", "/order")} <= set(json_writes())


@pytest.mark.parametrize("depth", [100_000, 65])
def test_every_json_write_endpoint_refuses_a_deeply_nested_body(staff_token_client, redis_client, depth):
    # given: a body nested past orjson's own limit (1,024), and one just past API_JSON_MAX_DEPTH (64)
    body = '{"description": "x", "name": "x", "nested": ' + _nested(depth - 1) + "}"
    # and a draft campaign, so the routes on one campaign get as far as reading the body
    from campaigns.models import Campaign

    campaign = Campaign.objects.create(name="D", subject="s", body="b", status=Campaign.Status.DRAFT)
    before = _side_effects(redis_client)
    for method, path in json_writes({"campaign_id": campaign.pk}):
        # when
        response = getattr(staff_token_client, method)(path, body, content_type="application/json")
        # then
        _assert_error(response, 400, "not valid JSON")
    assert _side_effects(redis_client) == before


def test_a_body_nested_64_levels_is_still_parsed(api_client):
    nested = json.loads(_nested(63))
    response = api_client.post("/api/v1/events/", {"description": "deep", "extra": nested}, format="json")
    assert response.status_code == 200, response.content


def test_every_get_refuses_control_characters_in_the_query_with_400(staff_token_client, redis_client):
    assert connection.vendor == "postgresql"
    before = _side_effects(redis_client)
    for _, path in reads():
        response = staff_token_client.get(path + "?search=%00&status=%00")
        _assert_error(response, 400, "'search'", "U+0000")
        response = staff_token_client.get(path + "?status=a%01b")
        _assert_error(response, 400, "'status'", "U+0001")
    assert _side_effects(redis_client) == before


def test_a_search_with_text_around_a_nul_is_refused_on_the_list_endpoints(api_client):
    for path in ["/api/v1/users/", "/api/v1/events/", "/api/v1/campaigns/", "/api/v1/orders/"]:
        _assert_error(api_client.get(path, {"search": "ab\x00c", "status": "\x00"}), 400, "'search'")


@pytest.mark.parametrize("key", ["k" * 256, "key\x01", "clé", "key\x00"])
def test_a_bad_idempotency_key_is_400_and_places_no_order(api_client, redis_client, key):
    from orders.models import Order
    from orders.services import shop_reset_to_seed

    shop_reset_to_seed()
    before = _side_effects(redis_client)
    for path in ["/api/v1/orders/", "/order"]:
        response = api_client.post(
            path, {"product_ids": [201], "customer_id": 101}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        body = _assert_error(response, 400, "Idempotency-Key")
        assert list(body["errors"]) == ["Idempotency-Key"]
    assert _side_effects(redis_client) == before
    assert Order.objects.count() == 0


def test_an_idempotency_key_of_255_characters_is_accepted(api_client):
    from orders.services import shop_reset_to_seed

    shop_reset_to_seed()
    body = {"product_ids": [201], "customer_id": 101}
    first = api_client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="k" * 255)
    again = api_client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="k" * 255)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


@override_settings(DEBUG=True)
def test_a_5_mb_body_is_413_json_on_every_json_write_endpoint_with_debug_on(staff_token_client, redis_client):
    body = json.dumps({"description": "x" * FIVE_MB})
    before = _side_effects(redis_client)
    for method, path in [*json_writes(), ("post", "/api/v1/email/send"), ("post", "/init-data")]:
        response = getattr(staff_token_client, method)(path, body, content_type="application/json")
        _assert_error(response, 413, "at most 2621440")
    # a seed route parses any Content-Type: a form-encoded body too
    response = staff_token_client.post("/event", body, content_type="application/x-www-form-urlencoded")
    _assert_error(response, 413)
    assert _side_effects(redis_client) == before


@override_settings(DEBUG=True)
def test_with_debug_on_djangos_own_error_pages_are_json_too(api_client):
    # a Host that is not allowed: Django's technical 400 page (DisallowedHost, with the settings)
    _assert_error(api_client.get("/api/v1/users/", HTTP_HOST="evil.example"), 400)
    # too many query parameters: TooManyFieldsSent, raised while reading the query
    _assert_error(
        api_client.get("/api/v1/users/?" + "&".join(f"a{n}=1" for n in range(1001))), 400, "MAX_NUMBER_FIELDS"
    )
    # a plain Django view's 405 keeps its Allow header
    response = api_client.post("/healthz")
    _assert_error(response, 405)
    assert response["Allow"] == "GET"
    # the admin keeps its own HTML pages
    assert api_client.get("/admin/login/")["Content-Type"].startswith("text/html")
