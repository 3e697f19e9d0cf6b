"""Chaos, end to end: the event simulator, a campaign and an order load at once, while a random
worker is killed -9 every few seconds and Redis is restarted once. Then the promises are checked.

Redis runs with appendonly (AOF): a restart of a non-persistent Redis loses, by definition, the
stream entries that were accepted but not yet consumed — persistence (AOF) is an operations
requirement for production, not something the application can make up for.

Real processes: gunicorn (the simulator's target), `runworker --all` twice, `relay_outbox`;
kills chosen by a seeded random generator. About a minute on two cores.
"""

import random
import threading
import time
from collections import Counter

import pytest
from rest_framework.authtoken.models import Token

from campaigns.models import Campaign
from commsplatform.devservers import RedisServer
from notifications.models import Delivery, NotificationMessage
from notifications.simulator import simulate_events
from orders.models import Order
from tests.conftest import _reset_redis_clients
from tests.helpers import subprocess_environment, wait_until
from tests.orders.saga import assert_saga_invariants, set_shop
from tests.orders.test_concurrency import ACCOUNTS, PRODUCTS, order_bodies, place_concurrently
from tests.weather.conftest import WebProcess
from users.models import Recipient
from users.services import recipients_generate

pytestmark = pytest.mark.django_db(transaction=True)

SEED = 8
EVENT_RATE, EVENT_SECONDS = 15, 20  # simulator: 300 events
RECIPIENTS = 150
ORDERS = 120
KILL_EVERY_S = 4.0
SEND_CHUNK, SENDER_THREADS = 5, 2
WORKER_ENV = {
    "WORKER_CLAIM_IDLE_MS": "1000",
    "WORKER_BLOCK_MS": "200",
    "OUTBOX_RELAY_GRACE_S": "1",
    "CAMPAIGN_FANOUT_CHUNK": "25",
    "EMAIL_BATCH_SIZE": "10",
    "EMAIL_SEND_CHUNK": str(SEND_CHUNK),
    "EMAIL_SENDER_CONCURRENCY": str(SENDER_THREADS),
    "EMAIL_RATE_LIMIT_PER_S": "20",  # the campaign lasts through the kills
    "EMAIL_RATE_BURST": "5",
    "EMAIL_SENDING_LEASE_S": "2",
    "EMAIL_RETRY_POLL_S": "0.2",
    "EMAIL_RETRY_BASE_S": "0.2",
    "EMAIL_RETRY_CAP_S": "0.5",
    "EMAIL_OUTAGE_PAUSE_BASE_S": "0.1",
    "EMAIL_OUTAGE_PAUSE_CAP_S": "0.5",
    "EMAIL_MAX_ATTEMPTS": "50",
    "WORKER_MAX_DELIVERIES": "50",  # a Redis restart is not a reason to dead-letter
}


@pytest.fixture
def aof_redis(settings):
    """A Redis of this test's own with appendonly=yes; Django and the children point at it."""
    with RedisServer(appendonly=True) as server:
        settings.REDIS_URL = server.url
        _reset_redis_clients()
        yield server
    _reset_redis_clients()


def test_simulator_campaign_and_orders_survive_kills_and_a_redis_restart(
    aof_redis, smtp_server, kafka_broker, worker_process, api_client, api_user
):
    kills, restarts = run_chaos(smtp_server, worker_process, api_client, api_user, disrupt=aof_redis.restart)
    assert restarts == 1


def run_chaos(smtp_server, worker_process, api_client, api_user, *, disrupt, extra_env=None) -> tuple[int, int]:
    """The load, the kills and `disrupt()` once halfway; then every promise checked.
    Returns (worker kills, disruptions). Also run on a Redis Cluster (tests/cluster)."""
    worker_env = {**WORKER_ENV, **(extra_env or {})}
    rng = random.Random(SEED)
    # given: shop, recipients, the web process, two `runworker --all` and the outbox relay
    set_shop(products=PRODUCTS, accounts=ACCOUNTS)
    recipients_generate(count=RECIPIENTS, seed=SEED)
    web = WebProcess(subprocess_environment(worker_env), threads=8)
    workers = [worker_process("runworker", "--all", env=worker_env) for _ in range(2)]
    worker_process("relay_outbox", "--interval", "0.5", env=worker_env)
    token = Token.objects.get(user=api_user).key  # api_client made it
    try:
        # when: a campaign, the event simulator and 120 concurrent orders start together
        response = api_client.post(
            "/api/v1/campaigns/", {"name": "Chaos", "subject": "Hi {{ name }}", "body": "Dear {{ name }}"}
        )
        assert response.status_code == 201, response.content
        campaign_id = response.json()["id"]
        simulated = {}
        simulator = threading.Thread(
            target=lambda: simulated.update(
                result=simulate_events(
                    url=f"{web.url}/event", token=token, rate=EVENT_RATE, duration=EVENT_SECONDS, concurrency=4
                )
            )
        )
        placed: list[int] = []
        ordering = threading.Thread(
            target=lambda: placed.extend(place_concurrently(api_user, order_bodies(seed=SEED)[:ORDERS], threads=3))
        )
        simulator.start()
        ordering.start()

        # ... and every few seconds a random worker is killed -9 (and replaced); Redis restarts once
        kills = restarts = 0
        started = time.monotonic()
        while simulator.is_alive() or ordering.is_alive():
            time.sleep(KILL_EVERY_S)
            victim = rng.randrange(len(workers))
            workers[victim].kill()
            kills += 1
            workers[victim] = worker_process("runworker", "--all", env=worker_env)
            if restarts == 0 and time.monotonic() - started > EVENT_SECONDS / 2:
                disrupt()
                restarts += 1
        simulator.join()
        ordering.join()

        # then: quiescence, and every promise kept
        result = simulated["result"]
        wait_until(lambda: NotificationMessage.objects.count() >= result.ok, timeout=60, interval=0.5)
        campaign = wait_until(
            lambda: Campaign.objects.filter(
                pk=campaign_id, status__in=["completed", "completed_with_failures"]
            ).first(),
            timeout=90,
            interval=0.5,
        )
        wait_until(
            lambda: Order.objects.filter(status__in=Order.FINAL_STATUSES).count() == ORDERS, timeout=60, interval=0.5
        )
        time.sleep(2)  # nothing late: a duplicate would show up now

        # every accepted event stored exactly once
        stored = list(NotificationMessage.objects.values_list("description", flat=True))
        events = {"accepted": result.ok, "stored": len(stored), "distinct": len(set(stored))}
        assert result.ok > 0 and result.status_counts.keys() <= {200, 503}, result.status_counts
        assert events == {"accepted": result.ok, "stored": result.ok, "distinct": result.ok}

        # every eligible recipient mailed once (one ledger row, one distinct message id each)
        eligible = set(Recipient.objects.filter(opted_out=False, email__isnull=False).values_list("email", flat=True))
        assert len(eligible) == RECIPIENTS
        assert (campaign.status, campaign.sent_count, campaign.failed_count) == ("completed", RECIPIENTS, 0)
        sent = Delivery.objects.filter(campaign_id=campaign_id, channel="email", status="sent")
        assert sent.count() == sent.values("recipient_id").distinct().count() == RECIPIENTS
        mails = smtp_server.messages
        by_message_id = Counter(m.message_id for m in mails)
        assert set(m.rcpt_tos[0] for m in mails) == eligible and len(by_message_id) == RECIPIENTS
        # SMTP has no idempotency: a kill between the send and the ledger write re-sends at most
        # the rows a sender thread held, and with the same Message-ID (mail clients drop the copy).
        resent = len(mails) - RECIPIENTS
        assert resent <= kills * SENDER_THREADS * SEND_CHUNK

        # every order final, stock and money balance
        statuses = assert_saga_invariants(products=PRODUCTS, accounts=ACCOUNTS)
        assert sum(statuses.values()) == len(placed) == ORDERS

        print(
            f"\nchaos: events accepted={result.ok} stored={len(stored)} refused={result.errors} "
            f"({result.status_counts}); mails eligible={RECIPIENTS} received={len(mails)} resent={resent}; "
            f"orders={ORDERS} {dict(statuses)}; kills={kills} redis restarts={restarts}; "
            f"lost=0 duplicated rows=0"
        )
        return kills, restarts
    finally:
        print(f"--- gunicorn ---\n{web.output()[-3000:]}")
        web.close()
