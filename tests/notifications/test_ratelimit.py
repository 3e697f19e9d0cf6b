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
