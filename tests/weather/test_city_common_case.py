"""POST /WeatherForecast/city's common case (a token the process has verified) skips DRF's
machinery; it must answer exactly as the DRF path does (200, 504, 429), trim and refuse
as its serializer does, and throttle the same shared budget."""

import json
from datetime import datetime, timedelta

import pytest
import requests
from rest_framework.authtoken.models import Token

from weather.providers import BuiltinForecastProvider

from .conftest import REQUESTS, replies_for, wait_for_terminals

pytestmark = pytest.mark.django_db(transaction=True)

SEED_FIELDS = ["city", "location", "forecastTime", "temperature", "condition", "humidity", "windSpeed", "requestId"]
HEADERS = ("Content-Type", "Vary", "Allow", "X-Frame-Options", "X-Content-Type-Options", "Retry-After")


def expected_body(body: dict, city: str, location: str) -> dict:
    """What the built-in provider answers for `city` in the hour before body's forecastTime."""
    forecast_time = datetime.fromisoformat(body["forecastTime"].replace("Z", "+00:00"))
    expected = BuiltinForecastProvider(delay_ms=0).forecast(
        city=city, location=location, at=forecast_time - timedelta(hours=1)
    )
    return {
        "city": city,
        "location": location,
        "forecastTime": body["forecastTime"],
        "temperature": expected.temperature,
        "condition": expected.condition,
        "humidity": expected.humidity,
        "windSpeed": expected.wind_speed,
        "requestId": body["requestId"],
    }


def same_headers(one: requests.Response, other: requests.Response) -> None:
    for header in HEADERS:
        assert one.headers.get(header) == other.headers.get(header), header


def test_the_cached_token_answer_matches_the_drf_answer_and_the_budget_is_shared(
    web_process, worker_process, api_user, redis_client
):
    # given: a terminal, and a web process whose callers may make 3 requests a minute
    web = web_process({"THROTTLE_USER": "3/minute"}, threads=2)
    worker_process("runworker", "weather")
    wait_for_terminals(redis_client, 1)
    token = {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}
    url = f"{web.url}/WeatherForecast/city"
    # when: the first call verifies the token (the DRF path), the next ones find it cached
    first = requests.post(url, json={"city": "Oslo", "location": "Harbour"}, headers=token, timeout=10)
    second = requests.post(url, json={"city": "Oslo", "location": "Harbour"}, headers=token, timeout=10)
    third = requests.post(url, data=b'{"city": "Lima"}', headers=token, timeout=10)
    # then: the same answer from both paths
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200], third.text
    for response, (city, location) in zip(
        (first, second, third), [("Oslo", "Harbour")] * 2 + [("Lima", "")], strict=True
    ):
        body = response.json()
        assert list(body) == SEED_FIELDS
        assert body == expected_body(body, city, location)
        [reply] = replies_for(redis_client, body["requestId"])
        assert reply["data"] == body
    assert second.content.count(b" ") == first.content.count(b" ")  # the same rendering (compact JSON)
    same_headers(second, first)
    same_headers(third, first)
    length = redis_client.xlen(REQUESTS)
    # when: a fourth within the minute, on the cached path
    refused = requests.post(url, json={"city": "Oslo"}, headers=token, timeout=10)
    # then: the DRF path's 429, and no request sent
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 120
    assert (refused.json()["status"], refused.json()["title"]) == (429, "Too Many Requests")
    assert refused.headers["Allow"] == "POST, OPTIONS"
    assert redis_client.xlen(REQUESTS) == length


def test_a_body_the_serializer_would_change_goes_through_the_drf_path(
    web_process, worker_process, api_user, redis_client
):
    web = web_process(threads=2)
    worker_process("runworker", "weather")
    wait_for_terminals(redis_client, 1)
    token = {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}
    url = f"{web.url}/WeatherForecast/city"
    assert requests.post(url, json={"city": "warm"}, headers=token, timeout=10).status_code == 200
    length = redis_client.xlen(REQUESTS)
    # when: cached token, but a blank city, a number, and padded text
    blank = requests.post(url, json={"city": "   "}, headers=token, timeout=10)
    number = requests.post(url, json={"city": 7}, headers=token, timeout=10)
    padded = requests.post(url, json={"city": "  Rome ", "location": " Centre", "x": 1}, headers=token, timeout=10)
    # then: refused as DRF refuses (nothing sent), and trimmed as DRF trims
    assert (blank.status_code, number.status_code) == (400, 400), (blank.text, number.text)
    assert blank.json()["errors"] == {"city": ["This field may not be blank."]}
    assert number.json()["errors"] == {"city": ["Must be a string."]}
    assert padded.status_code == 200, padded.text
    assert (padded.json()["city"], padded.json()["location"]) == ("Rome", "Centre")
    assert redis_client.xlen(REQUESTS) == length + 1


def test_no_terminal_is_the_same_504_on_both_paths(web_process, api_user, redis_client):
    # given: no terminal runs, and callers wait half a second
    web = web_process({"WEATHER_REPLY_TIMEOUT_S": "0.5"}, threads=2)
    token = {"Authorization": f"Token {Token.objects.create(user=api_user).key}"}
    url = f"{web.url}/WeatherForecast/city"
    # when: the DRF path (token not yet verified), then the cached one
    answers = [requests.post(url, json={"city": "Quito"}, headers=token, timeout=10) for _ in range(2)]
    # then: the same 504, each naming its request, which is on the stream
    assert [r.status_code for r in answers] == [504, 504]
    same_headers(answers[1], answers[0])
    sent = [json.loads(fields["data"])["requestId"] for _, fields in redis_client.xrange(REQUESTS)]
    assert len(sent) == 2
    for answer, request_id in zip(answers, sent, strict=True):
        assert answer.json() == {
            "status": 504,
            "title": "Gateway Timeout",
            "description": f"No forecast within 0.5 s for request {request_id}: "
            "the weather terminals are down or overloaded. Retry later.",
        }
