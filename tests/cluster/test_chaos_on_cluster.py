"""The chaos test of tests/hardening/test_chaos.py with every stream on the Redis Cluster:
the event simulator, a campaign and 120 orders at once while a random worker is killed -9
every few seconds, then every promise checked (each accepted event stored once, each
recipient mailed once, every order final with stock and money balancing).

The cache and the throttles stay on a plain Redis (CACHE_REDIS_URL), as the settings
require with a cluster. Losing a master is tests/cluster/test_failover.py's subject: here
the cluster stays whole, so nothing may be lost at all.
"""

import os

import pytest
from django.conf import settings

from tests.hardening.test_chaos import run_chaos
from workers.connection import get_redis

pytestmark = pytest.mark.django_db(transaction=True)


def test_simulator_campaign_and_orders_survive_worker_kills_on_a_redis_cluster(
    on_cluster, smtp_server, kafka_broker, worker_process, api_client, api_user
):
    plain_redis = os.environ["REDIS_URL"]  # the session's single Redis (the plugin's)
    kills, _ = run_chaos(
        smtp_server,
        worker_process,
        api_client,
        api_user,
        disrupt=lambda: None,
        extra_env={"CACHE_REDIS_URL": plain_redis},
    )
    assert kills > 0
    # and it was the cluster that carried the streams
    assert settings.REDIS_URL.startswith("redis+cluster://")
    assert get_redis().exists("NotificationStream", "orders", "campaign") == 3
