"""The send rate is one for the whole platform: three sender processes share one GCRA
state in a real Redis. A count over a window, not a timing of our code."""

import subprocess
import sys

import pytest

from notifications.ratelimit import rate_limit_key, rate_limit_wait
from tests.helpers import subprocess_environment

pytestmark = pytest.mark.django_db

RATE = 60.0
RUN_S = 4.0
# Each child takes slots for RUN_S seconds (by Redis' clock, which the script uses) and
# prints the Redis time of each grant.
CHILD = """
import django; django.setup()
from notifications.ratelimit import rate_limit_wait
from workers.connection import get_redis
def now():
    s, us = get_redis().time()
    return s + us / 1e6
end = now() + {run}
while now() < end:
    rate_limit_wait(name="test-shared", rate={rate}, burst=1)
    print(now(), flush=True)
"""


def test_three_sender_processes_share_one_rate(redis_client):
    # given three processes reserving from the same limit
    env = subprocess_environment()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD.format(run=RUN_S, rate=RATE)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]

    # when they have run
    grants = sorted(float(line) for child in children for line in child.communicate(timeout=60)[0].split())
    assert all(child.returncode == 0 for child in children)

    # then over a window inside the run, the grants of all three together are the one rate (±10 %)
    start = grants[0] + 1.0
    window = 2.0
    counted = sum(1 for t in grants if start <= t < start + window)
    assert RATE * window * 0.9 <= counted <= RATE * window * 1.1, counted
    assert {len(child.args) for child in children} == {3}


def test_rate_limit_key_is_hash_tagged_per_name(settings):
    settings.EMAIL_RATE_LIMIT_KEY = "relay-a"
    assert rate_limit_key() == "{email-rate:relay-a}"
    assert rate_limit_key("relay-b") == "{email-rate:relay-b}"


def test_zero_rate_is_no_limit(redis_client, settings):
    settings.EMAIL_RATE_LIMIT_PER_S = 0
    assert rate_limit_wait() == 0.0
    assert redis_client.exists(rate_limit_key()) == 0


def _reservations(redis_client) -> int:
    stats = redis_client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("rate", "reservations"), [(1e6, 1), (16.0, 5)])
def test_a_chunk_reserves_its_slots_in_one_round_trip_unless_the_rate_is_low(
    smtp_server, redis_client, settings, rate, reservations
):
    from campaigns.models import Campaign
    from notifications.models import Delivery
    from notifications.sending import deliveries_send
    from notifications.services import message_id_for
    from users.models import Recipient

    # given: a chunk of 20 deliveries; at 16/s (burst 16) a reservation may take only a quarter of the burst
    settings.EMAIL_SEND_CHUNK = 20
    settings.EMAIL_RATE_LIMIT_PER_S = rate
    rate_limit_wait(rate=rate)  # the script is loaded: each reservation is now one EVALSHA
    campaign = Campaign.objects.create(
        name="c", subject="s", body="b", from_email="test@test.com", channels=["email"], status="sending"
    )
    ids = []
    for n in range(20):
        recipient = Recipient.objects.create(username=f"u{n}", email=f"u{n}@example.com")
        ids.append(
            Delivery.objects.create(
                campaign=campaign,
                recipient=recipient,
                address=recipient.email,
                message_id=message_id_for(campaign_id=campaign.pk, recipient_id=recipient.pk),
            ).pk
        )
    before = _reservations(redis_client)

    # when
    sent = deliveries_send(delivery_ids=ids)

    # then: all sent, after one reservation for the whole chunk (or 5 of 4 slots at the low rate)
    assert sent == 20
    assert len(smtp_server.messages) == 20
    assert _reservations(redis_client) - before == reservations
