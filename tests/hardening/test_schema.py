"""The OpenAPI schema is valid, warning-free, and describes what the API really answers."""

import pytest
import yaml
from django.core.management import call_command
from django.test import Client


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    # --fail-on-warn raises SchemaGenerationError on any warning (clashing component names described wrong bodies)
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_the_openapi_schema_generates_without_a_warning(schema):
    components = schema["components"]["schemas"]
    assert "CampaignRetryFailedOutput" in components and "StreamListOutput" in components
    assert "Output" not in components and "InputRequest" not in components


def test_every_operation_documents_the_json_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert sorted(error["required"]) == ["description", "status", "title"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"400", "404", "429", "503"} <= set(responses), (method, path)
            assert responses["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            if {} not in operation.get("security", [{}]):
                assert {"401", "403"} <= set(responses), (method, path)


def test_paginated_lists_are_documented_as_pages(schema):
    for path in ["/api/v1/accounts/", "/api/v1/campaigns/", "/api/v1/events/", "/api/v1/orders/", "/api/v1/users/"]:
        body = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert body["$ref"].startswith("#/components/schemas/Paginated"), path


def test_seed_routes_that_parse_any_content_type_document_a_json_body(schema):
    for path in ["/event", "/order", "/WeatherForecast/city"]:
        assert list(schema["paths"][path]["post"]["requestBody"]["content"]) == ["application/json"], path


def test_a_campaign_not_started_has_null_timestamps_in_the_schema(schema):
    campaign = schema["components"]["schemas"]["CampaignOutput"]["properties"]
    assert campaign["started_at"]["nullable"] is True and campaign["finished_at"]["nullable"] is True


def test_an_order_needs_at_least_one_product_in_the_schema(schema):
    assert schema["components"]["schemas"]["OrderPlaceInputRequest"]["properties"]["product_ids"]["minItems"] == 1


@pytest.mark.django_db
def test_a_csrf_refusal_is_the_json_error_shape_not_an_html_page(django_user_model):
    # given: a session-authenticated browser client that enforces CSRF, without the token
    user = django_user_model.objects.create_user(username="bob", password="x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    # when: it posts to a plain Django route (the admin's)
    response = client.post("/admin/logout/", {})
    # then
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["status"], body["title"]) == (403, "Forbidden")
    assert body["description"].startswith("CSRF verification failed")
