"""Who may do what, for every route the URL resolver knows (a new route without a row fails).

Callers: anonymous; an authenticated user in no role; a user in exactly one role (viewers,
producers, operators; commsplatform/roles.py); staff. PUBLIC: anyone (health probes,
metrics, the schema and docs, the API root, the weather seed's health/status). STAFF: staff
only (the admin, /init-data, user generation, the streams view, dead letters, pausing
consumers). TOKEN: anyone holding a
signed token in the path (unsubscribe links): a bad token is a 404 for everyone, staff
too. SIGNED: only a request signed with BOUNCE_WEBHOOK_SECRET (the bounce webhook): 403
unsigned, for everyone, staff too. Otherwise the set of roles allowed for that method;
staff may call everything. A refused caller gets 401/403/404 and nothing changes (no row,
no stream entry, no mail).
"""

import re

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from commsplatform.permissions import PermissionRule
from commsplatform.roles import roles_ensure

PUBLIC, STAFF, TOKEN, SIGNED = "public", "staff", "token", "signed"
VIEWERS, PRODUCERS, OPERATORS = "viewers", "producers", "operators"
READERS = frozenset({VIEWERS, OPERATORS})
WRITES = {"post", "put", "patch", "delete"}

# route name → {method: PUBLIC | STAFF | the roles allowed}
MATRIX = {
    "healthz": {"get": PUBLIC},
    "readyz": {"get": PUBLIC},
    "metrics": {"get": PUBLIC},
    "schema": {"get": PUBLIC},
    "swagger-ui": {"get": PUBLIC},
    "api-root": {"get": PUBLIC},
    "seed-weather-health": {"get": PUBLIC},
    "seed-weather-status": {"get": PUBLIC},
    "streams": {"get": STAFF},
    "dead-letters:list": {"get": STAFF},
    "dead-letters:detail": {"get": STAFF},
    "dead-letters:redrive": {"post": STAFF},
    "dead-letters:purge": {"post": STAFF},
    "consumers:list": {"get": STAFF},
    "consumers:pause": {"post": STAFF},
    "consumers:resume": {"post": STAFF},
    "seed-init-data": {"post": STAFF},
    "seed-user-generate": {"get": STAFF},
    "events:list": {"get": READERS, "post": {PRODUCERS}},
    "orders:list": {"get": READERS, "post": {PRODUCERS}},
    "orders:detail": {"get": READERS},
    "products:list": {"get": READERS},
    "products:detail": {"get": READERS},
    "accounts:list": {"get": READERS},
    "accounts:detail": {"get": READERS},
    "users:list": {"get": READERS, "post": {OPERATORS}},
    "users:detail": {"get": READERS},
    "campaigns:list": {"get": READERS, "post": {OPERATORS}},
    "campaigns:detail": {"get": READERS, "patch": {OPERATORS}},
    "campaigns:pause": {"post": {OPERATORS}},
    "campaigns:resume": {"post": {OPERATORS}},
    "campaigns:preview": {"get": {OPERATORS}},
    "campaigns:send-test": {"post": {OPERATORS}},
    "campaigns:send": {"post": {OPERATORS}},
    "campaigns:cancel": {"post": {OPERATORS}},
    "campaigns:retry-failed": {"post": {OPERATORS}},
    "batteries:list": {"get": READERS},
    "batteries:detail": {"get": READERS},
    "weather:forecast-create": {"post": {PRODUCERS}},
    "seed-event": {"post": {PRODUCERS}},
    "seed-email-send": {"post": {OPERATORS}},
    "seed-order": {"post": {PRODUCERS}},
    "seed-report": {"get": READERS},
    "seed-user-detail": {"get": READERS},
    "seed-campaign-create": {"get": {OPERATORS}},  # the seed's contract: a GET that creates a campaign (token only)
    "seed-weather-samples": {"get": {PRODUCERS}},
    "seed-weather-city": {"post": {PRODUCERS}},
    "unsubscribe-page": {"get": TOKEN, "post": TOKEN},
    "unsubscribe": {"post": TOKEN},
    "bounces": {"post": SIGNED},
    "suppressions-list": {"get": {OPERATORS}, "post": {OPERATORS}},
    "suppressions-detail": {"delete": {OPERATORS}},
}
# A refusal of TOKEN and SIGNED routes, whoever calls: the path's token "1" is forged, the
# call carries no signature.
REFUSED_WITHOUT_CREDENTIAL = {TOKEN: 404, SIGNED: 403}


def _refusal_without_credential(rule) -> int | None:
    return REFUSED_WITHOUT_CREDENTIAL.get(rule) if isinstance(rule, str) else None


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
    assert {name: methods for _, name, methods in routes()} == {name: set(rule) for name, rule in MATRIX.items()}
    # every operation of the OpenAPI schema is one of them
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        name = resolve(re.sub(r"\{\w+\}", "1", path)).view_name
        assert name in MATRIX, path
        assert set(operations) <= set(MATRIX[name]), (path, set(operations))


def test_every_api_view_names_its_permissions_instead_of_relying_on_the_default():
    for path, name, methods in routes():
        cls = getattr(resolve(path).func, "cls", None)
        if cls is None:
            continue  # plain Django views: the probes and metrics
        kinds = {c.__name__ for c in cls.permission_classes}
        assert "IsAuthenticated" not in kinds, name
        for rule in (c for c in cls.permission_classes if issubclass(c, PermissionRule)):
            # a permission is named for every method the route answers
            assert {m.lower() for m in rule.perms_by_method} >= methods, name


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
    settings.BOUNCE_WEBHOOK_SECRET = "matrix-secret"  # configured, so unsigned calls are a 403 (not a 503)
    settings.WEATHER_REPLY_TIMEOUT_S = 0.2  # no weather worker here: a 504, quickly
    return smtp_server


def _allowed(rule, role: str | None) -> bool:
    return rule == PUBLIC or (rule not in (STAFF, TOKEN, SIGNED) and role in rule)


def _role_client(django_user_model, role: str | None):
    user = django_user_model.objects.create_user(username=f"user-{role or 'none'}", password="x")
    if role:
        roles_ensure()
        user.groups.add(Group.objects.get(name=role))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.django_db
def test_anonymous_callers_read_only_public_routes_and_write_nothing(anon_client, redis_client, quick_backends):
    before = _side_effects(redis_client, quick_backends)
    for path, name, methods in routes():
        for method in sorted(methods):
            status = _call(anon_client, method, path).status_code
            if MATRIX[name][method] == PUBLIC:
                assert status == 200, (method, path, status)
            elif (refusal := _refusal_without_credential(MATRIX[name][method])) is not None:
                assert status == refusal, (method, path, status)
            else:
                assert status == 401, (method, path, status)
    # and the admin: a redirect to its login page, for reads and writes
    for method, path in [("get", "/admin/"), ("get", "/admin/orders/order/"), ("post", "/admin/orders/order/add/")]:
        response = getattr(anon_client, method)(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), (method, path)
    assert _side_effects(redis_client, quick_backends) == before


@pytest.mark.django_db
@pytest.mark.parametrize("role", [None, VIEWERS, PRODUCERS, OPERATORS])
def test_each_role_may_call_exactly_its_routes_and_a_refusal_changes_nothing(
    role, django_user_model, redis_client, quick_backends
):
    client = _role_client(django_user_model, role)
    calls = [(path, name, method) for path, name, methods in routes() for method in sorted(methods)]
    # refused first: 403 with the JSON error shape, and nothing happened
    before = _side_effects(redis_client, quick_backends)
    for path, name, method in calls:
        if not _allowed(MATRIX[name][method], role):
            response = _call(client, method, path)
            expected = _refusal_without_credential(MATRIX[name][method]) or 403
            assert response.status_code == expected, (role, method, path, response.status_code)
            if response["Content-Type"].startswith("application/json"):
                assert response.json()["status"] == expected, (role, method, path)
    assert _side_effects(redis_client, quick_backends) == before
    # allowed: the answer may be 400 for the empty body, 404, 504 without a worker, but never 401/403
    for path, name, method in calls:
        if _allowed(MATRIX[name][method], role):
            status = _call(client, method, path).status_code
            assert status not in (401, 403), (role, method, path, status)


@pytest.mark.django_db
def test_a_user_in_every_role_is_still_refused_the_staff_routes_and_the_admin(
    api_client, api_user, redis_client, quick_backends
):
    before = _side_effects(redis_client, quick_backends)
    for path, name, methods in routes():
        for method in sorted(methods):
            if MATRIX[name][method] == STAFF:
                assert _call(api_client, method, path).status_code == 403, (method, path)
    assert _side_effects(redis_client, quick_backends) == before
    # the admin refuses a logged-in non-staff user
    api_client.force_login(api_user)
    response = api_client.get("/admin/orders/order/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_viewers_see_recipients_without_email_and_mobile_operators_with(django_user_model):
    from users.models import Recipient

    recipient = Recipient.objects.create(username="ada", email="ada@example.com", mobile="+44 20 7946 0000")
    paths = ["/api/v1/users/", f"/api/v1/users/{recipient.pk}/", f"/api/v1/user/{recipient.pk}"]
    viewer, operator = _role_client(django_user_model, VIEWERS), _role_client(django_user_model, OPERATORS)
    for path in paths:
        seen_by_viewer, seen_by_operator = viewer.get(path).json(), operator.get(path).json()
        as_viewer = seen_by_viewer["results"][0] if "results" in seen_by_viewer else seen_by_viewer
        as_operator = seen_by_operator["results"][0] if "results" in seen_by_operator else seen_by_operator
        assert (as_viewer["username"], as_viewer["email"], as_viewer["mobile"]) == ("ada", None, None), path
        assert (as_operator["email"], as_operator["mobile"]) == ("ada@example.com", "+44 20 7946 0000"), path


@pytest.mark.django_db
def test_staff_may_use_every_route_and_the_admin(staff_client, quick_backends):
    for path, name, methods in routes():
        for method in sorted(methods):
            status = _call(staff_client, method, path).status_code
            if (refusal := _refusal_without_credential(MATRIX[name][method])) is not None:
                assert status == refusal, (method, path, status)
            else:
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
