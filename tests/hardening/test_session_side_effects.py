"""The seed's GETs with side effects (campaign/create mails every recipient, user/generate adds
users) take a token only: a browser's session cookie, sent along by a page on another site,
must not trigger them, since GET requests carry no CSRF protection."""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from campaigns.models import Campaign
from users.models import Recipient

FOREIGN = {"HTTP_ORIGIN": "https://evil.example", "HTTP_REFERER": "https://evil.example/page"}


@pytest.fixture
def admin_session(django_user_model):
    """A browser logged in to the admin through its login form: a real session cookie."""
    django_user_model.objects.create_superuser(username="root", email="root@example.com", password="pw-root-123")
    browser = Client()
    response = browser.post("/admin/login/?next=/admin/", {"username": "root", "password": "pw-root-123"})
    assert response.status_code == 302 and "sessionid" in browser.cookies
    assert browser.get("/admin/").status_code == 200
    return browser


@pytest.fixture
def recipients(settings):
    settings.USERS_GENERATE_COUNT = 3
    return [Recipient.objects.create(username=f"r{i}", email=f"r{i}@example.com") for i in range(2)]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/campaign/create", "/api/v1/user/generate"])
def test_a_session_cookie_from_a_foreign_page_triggers_nothing(path, admin_session, recipients, redis_client):
    # when: a page on another site makes the logged-in admin's browser GET the route
    response = admin_session.get(path, **FOREIGN)
    # then: refused with the JSON error shape, and nothing happened
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["title"] == "Unauthorized"
    assert Campaign.objects.count() == 0
    assert Recipient.objects.count() == len(recipients)
    assert list(redis_client.scan_iter(_type="stream")) == []  # no campaign event: no mail can follow


@pytest.mark.django_db
def test_with_a_token_the_seed_contract_holds(recipients, django_user_model):
    admin = django_user_model.objects.create_superuser(username="root", password="pw-root-123")
    token = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin).key}")

    created = token.get("/api/v1/campaign/create", **FOREIGN)  # a token is not sent by a browser on its own
    assert created.status_code == 200
    assert set(created.json()) == {"id", "name"}
    assert Campaign.objects.get().name == created.json()["name"]

    generated = token.get("/api/v1/user/generate")
    assert (generated.status_code, generated.json()) == (200, {"created": 3})
    assert Recipient.objects.count() == len(recipients) + 3
