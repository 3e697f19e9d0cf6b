"""POST /event's common case (a token the process has verified) skips DRF's machinery; it
must answer exactly as the DRF path does, and throttle the same shared budget."""

import pytest
import requests
from rest_framework.authtoken.models import Token

from tests.helpers import subprocess_environment
from tests.weather.conftest import WebProcess

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "NotificationStream"


@pytest.fixture
def web_process():
    process = WebProcess(subprocess_environment({"THROTTLE_USER": "3/minute"}), threads=2)
    yield process
    print(process.output())
    process.close()


def test_the_cached_token_answer_matches_the_drf_answer_and_the_budget_is_shared(web_process, api_user, redis_client):
    token = {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}
    url = f"{web_process.url}/event"
    # given: the first call verifies the token (the DRF path), the next ones find it cached
    first = requests.post(url, json={"description": "one"}, headers=token, timeout=10)
    second = requests.post(url, json={"description": "two"}, headers=token, timeout=10)
    third = requests.post(url, data=b'{"description": "three"}', headers=token, timeout=10)
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    for cached in (second, third):
        assert set(cached.json()) == set(first.json()) == {"id", "description", "timestamp", "stream_id"}
        for header in ("Content-Type", "Vary", "Allow", "X-Frame-Options", "X-Content-Type-Options"):
            assert cached.headers.get(header) == first.headers.get(header), header
    assert [fields["payload"] for _, fields in redis_client.xrange(STREAM)][-3:] == [
        f'{{"id":{r.json()["id"]},"description":"{r.json()["description"]}","timestamp":"{r.json()["timestamp"]}"}}'
        for r in (first, second, third)
    ]
    length = redis_client.xlen(STREAM)
    # when: a fourth within the minute, on the cached path
    refused = requests.post(url, json={"description": "four"}, headers=token, timeout=10)
    # then: the DRF path's 429, and nothing written
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 120
    assert (refused.json()["status"], refused.json()["title"]) == (429, "Too Many Requests")
    assert redis_client.xlen(STREAM) == length


def test_a_body_the_serializer_would_change_goes_through_the_drf_path(web_process, api_user, redis_client):
    token = {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}
    url = f"{web_process.url}/event"
    assert requests.post(url, json={"description": "warm"}, headers=token, timeout=10).status_code == 200
    length = redis_client.xlen(STREAM)
    # when: cached token, but a blank description and a padded one
    blank = requests.post(url, json={"description": "   "}, headers=token, timeout=10)
    padded = requests.post(url, json={"description": "  padded  "}, headers=token, timeout=10)
    # then: refused as DRF refuses (nothing written), and trimmed as DRF trims
    assert blank.status_code == 400, blank.text
    assert padded.status_code == 200 and padded.json()["description"] == "padded"
    assert redis_client.xlen(STREAM) == length + 1
