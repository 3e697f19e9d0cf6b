"""Who may do what, for every route the URL resolver knows (a new route without a row fails).

Roles: anonymous, an authenticated non-staff user (token), staff (token; session for the admin).
PUBLIC: anyone may read (health probes, metrics, the schema and docs, the API root, the
weather seed's health/status). USER: a token for reads and writes. STAFF: the admin,
/init-data, user generation and the streams view.
"""

import re

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.test import APIClient

PUBLIC, USER, STAFF = "public", "user", "staff"
WRITES = {"post", "put", "patch", "delete"}

# route name → (who, the methods it answers)
MATRIX = {
    "healthz": (PUBLIC, {"get"}),
    "readyz": (PUBLIC, {"get"}),
    "metrics": (PUBLIC, {"get"}),
    "schema": (PUBLIC, {"get"}),
    "swagger-ui": (PUBLIC, {"get"}),
    "api-root": (PUBLIC, {"get"}),
    "seed-weather-health": (PUBLIC, {"get"}),
    "seed-weather-status": (PUBLIC, {"get"}),
    "streams": (STAFF, {"get"}),
    "seed-init-data": (STAFF, {"post"}),
    "seed-user-generate": (STAFF, {"get"}),
    "events:list": (USER, {"get", "post"}),
    "orders:list": (USER, {"get", "post"}),
    "orders:detail": (USER, {"get"}),
    "products:list": (USER, {"get"}),
    "products:detail": (USER, {"get"}),
    "accounts:list": (USER, {"get"}),
    "accounts:detail": (USER, {"get"}),
    "users:list": (USER, {"get", "post"}),
    "users:detail": (USER, {"get"}),
    "campaigns:list": (USER, {"get", "post"}),
    "campaigns:detail": (USER, {"get"}),
    "campaigns:send": (USER, {"post"}),
    "campaigns:cancel": (USER, {"post"}),
    "campaigns:retry-failed": (USER, {"post"}),
    "batteries:list": (USER, {"get"}),
    "batteries:detail": (USER, {"get"}),
    "weather:forecast-create": (USER, {"post"}),
    "seed-event": (USER, {"post"}),
    "seed-email-send": (USER, {"post"}),
    "seed-order": (USER, {"post"}),
    "seed-report": (USER, {"get"}),
    "seed-user-detail": (USER, {"get"}),
    "seed-campaign-create": (USER, {"get"}),  # the seed's contract: a GET that creates a campaign
    "seed-weather-samples": (USER, {"get"}),
    "seed-weather-city": (USER, {"post"}),
}
FUNCTION_VIEW_METHODS = {"healthz": {"get"}, "readyz": {"get"}, "metrics": {"get"}}


def _walk(patterns, prefix="", namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = (
                f"{namespace}:{pattern.namespace}"
                if namespace and pattern.namespace
                else pattern.namespace or namespace
            )
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns or "")
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield prefix + str(pattern.pattern), name, pattern.callback


def routes() -> list[tuple[str, str, set[str]]]:
    """(concrete path, route name, methods) for every route except the admin and the JSON 404 catch-all."""
    found = []
    for route, name, callback in _walk(get_resolver().url_patterns):
        if route.startswith("admin/") or name is None:
            continue
        cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if cls is not None:
            methods = {m for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)}
        else:
            methods = FUNCTION_VIEW_METHODS.get(name, {"?"})
        found.append(("/" + re.sub(r"<\w+:\w+>", "1", route), name, methods))
    return found


def test_every_route_and_every_schema_operation_has_a_row():
    from drf_spectacular.generators import SchemaGenerator

    # every route the resolver knows, with exactly the methods it answers
    assert {name: methods for _, name, methods in routes()} == {name: m for name, (_, m) in MATRIX.items()}
    # every operation of the OpenAPI schema is one of them
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        name = resolve(re.sub(r"\{\w+\}", "1", path)).view_name
        assert name in MATRIX, path
        assert set(operations) <= MATRIX[name][1], (path, set(operations))


def _call(client, method: str, path: str):
    return getattr(client, method)(path, {} if method in WRITES else None, format="json")


def _side_effects(redis_client, smtp_server) -> dict:
    """Row counts of every model, the length of every stream, and the mails received."""
    rows = {m._meta.label: m.objects.count() for m in apps.get_models()}
    streams = {k: redis_client.xlen(k) for k in redis_client.scan_iter(_type="stream")}
    return {"rows": rows, "streams": streams, "mails": len(smtp_server.messages)}


@pytest.fixture
def quick_backends(settings, smtp_server):
    settings.USERS_GENERATE_COUNT = 3
    settings.WEATHER_REPLY_TIMEOUT_S = 0.2  # no weather worker here: a 504, quickly
    return smtp_server


@pytest.mark.django_db
def test_anonymous_callers_read_only_public_routes_and_write_nothing(anon_client, redis_client, quick_backends):
    before = _side_effects(redis_client, quick_backends)
    for path, name, methods in routes():
        who = MATRIX[name][0]
        for method in sorted(methods):
            status = _call(anon_client, method, path).status_code
            if who == PUBLIC:
                assert status == 200, (method, path, status)
            else:
                assert status in (401, 403), (method, path, status)
    # and the admin: a redirect to its login page, for reads and writes
    for method, path in [("get", "/admin/"), ("get", "/admin/orders/order/"), ("post", "/admin/orders/order/add/")]:
        response = getattr(anon_client, method)(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), (method, path)
    assert _side_effects(redis_client, quick_backends) == before


@pytest.mark.django_db
def test_a_non_staff_user_may_use_the_api_but_not_staff_routes(api_client, api_user, redis_client, quick_backends):
    # staff routes: 403, and nothing happened (no generated users, no reset shop)
    before = _side_effects(redis_client, quick_backends)
    for path, name, methods in routes():
        for method in sorted(methods) if MATRIX[name][0] == STAFF else []:
            assert _call(api_client, method, path).status_code == 403, (method, path)
    assert _side_effects(redis_client, quick_backends) == before
    # everything else: allowed (the answer may be 400 for the empty body, 404, 504 without a worker)
    for path, name, methods in routes():
        for method in sorted(methods) if MATRIX[name][0] != STAFF else []:
            status = _call(api_client, method, path).status_code
            assert status not in (401, 403), (method, path, status)
    # the admin refuses a logged-in non-staff user
    api_client.force_login(api_user)
    response = api_client.get("/admin/orders/order/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_staff_may_use_every_route_and_the_admin(staff_client, quick_backends):
    for path, _name, methods in routes():
        for method in sorted(methods):
            status = _call(staff_client, method, path).status_code
            assert status not in (401, 403), (method, path, status)
    assert staff_client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_an_invalid_token_is_refused_with_the_json_error_shape(redis_client, quick_backends):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    before = _side_effects(redis_client, quick_backends)
    response = client.post("/event", {"description": "x"}, format="json")
    assert response.status_code == 401
    assert response.json() == {"status": 401, "title": "Unauthorized", "description": "Invalid token."}
    assert _side_effects(redis_client, quick_backends) == before
