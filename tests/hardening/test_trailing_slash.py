"""/api/v1/ routes answer with or without their trailing slash; the schema keeps one form."""

import re

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from users.models import Recipient

pytestmark = pytest.mark.django_db


@pytest.fixture
def token_caller(api_user):
    """A token caller through a client that enforces CSRF, as a real one meets it."""
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=api_user).key}")
    return client


def _api_v1_reads() -> list[str]:
    """Every GET of the schema under /api/v1/ with a trailing slash, path parameters set to 1."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        re.sub(r"\{\w+\}", "1", path)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/") and path.endswith("/") and "get" in operations
    ]


def test_post_without_the_trailing_slash_with_a_token_creates_the_user(token_caller):
    # when
    response = token_caller.post("/api/v1/users", {"username": "ada", "email": "ada@example.com"}, format="json")

    # then
    assert response.status_code == 201, response.content
    assert Recipient.objects.filter(username="ada").count() == 1


def test_every_api_v1_read_answers_the_same_without_its_trailing_slash(token_caller):
    Recipient.objects.create(pk=1, username="ada", email="ada@example.com")
    paths = _api_v1_reads()
    assert {"/api/v1/users/", "/api/v1/users/1/", "/api/v1/campaigns/"} <= set(paths)
    for path in paths:
        with_slash = token_caller.get(path)
        without = token_caller.get(path.rstrip("/"))
        assert with_slash.status_code in (200, 403, 404), (path, with_slash.status_code)  # 403: staff only
        assert (without.status_code, without.json()) == (with_slash.status_code, with_slash.json()), path
    assert token_caller.get("/api/v1/users/1").json()["username"] == "ada"


def test_the_schema_lists_each_operation_once_with_the_slash():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = set(schema["paths"])
    assert "/api/v1/users/" in paths and "/api/v1/users" not in paths
    assert not {path.rstrip("/") for path in paths if path.endswith("/")} & paths
    assert reverse("users:list") == "/api/v1/users/"


def test_an_unknown_path_is_a_json_404_for_a_token_caller_not_a_csrf_refusal(token_caller):
    response = token_caller.post("/api/v1/nowhere", {}, format="json")

    assert response.status_code == 404
    assert response.json()["description"] == "No resource at /api/v1/nowhere."
