"""`manage.py simulate_events` (seed 001's traffic simulator): where it sends, and its exit."""

import pytest
from django.core.management import CommandError, call_command

from commsplatform.devservers import free_port

pytestmark = pytest.mark.django_db

STREAM = "NotificationStream"


def test_simulate_events_with_every_request_failing_exits_with_an_error(staff_client, redis_client, settings):
    # given: the URL make run would serve (settings.API_URL), with nothing listening
    settings.API_URL = f"http://127.0.0.1:{free_port()}"

    # when / then: the staff token is found, the requests go to API_URL, the command fails
    with pytest.raises(CommandError, match=rf"^4 of 4 requests to {settings.API_URL} failed: \{{'0': 4\}}$"):
        call_command("simulate_events", "--rate", "20", "--duration", "0.2")

    assert redis_client.xlen(STREAM) == 0


def test_simulate_events_without_any_token_says_so(api_client, redis_client):
    # given: only a non-staff user has a token
    with pytest.raises(CommandError, match=r"^no --token given and no staff token in the database"):
        call_command("simulate_events", "--rate", "20", "--duration", "0.2")

    assert redis_client.xlen(STREAM) == 0
