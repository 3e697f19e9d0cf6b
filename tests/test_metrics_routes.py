"""The `route` label of the HTTP metrics: readable, bounded, never a regex."""

import pytest
from django.contrib.auth.models import Permission
from prometheus_client import REGISTRY

pytestmark = pytest.mark.django_db


def _requests(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def test_unknown_paths_are_labelled_unmatched(anon_client):
    # given two different unknown paths
    before = _requests("GET", "unmatched", "404")
    # when both are requested
    statuses = [anon_client.get(path).status_code for path in ("/no/such/page", "/api/v1/nothing-here/")]
    # then both count under one `unmatched` route, and no label is the catch-all's regex
    assert statuses == [404, 404]
    assert _requests("GET", "unmatched", "404") == before + 2
    body = anon_client.get("/metrics").content.decode()
    assert "(?!" not in body and "^" not in body


def test_a_path_route_is_labelled_with_its_pattern(api_client):
    before = _requests("GET", "api/v1/orders/<int:order_id>/", "404")
    assert api_client.get("/api/v1/orders/987654/").status_code == 404
    assert _requests("GET", "api/v1/orders/<int:order_id>/", "404") == before + 1


def test_a_regex_route_is_labelled_with_its_url_name(staff_client, staff_user):
    # given an operator who may see campaigns; the admin's per-app index is a re_path
    # (`^(?P<app_label>auth|campaigns|…)/$`)
    staff_user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    before = _requests("GET", "admin:app_list", "200")
    # when it opens the campaigns app index
    assert staff_client.get("/admin/campaigns/").status_code == 200
    # then the request counts under the URL name
    assert _requests("GET", "admin:app_list", "200") == before + 1
