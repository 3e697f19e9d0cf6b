"""Redis losing its data delays work but loses none of it, and says so.

Real worker subprocesses, PostgreSQL, a redis-server of the test's own and a recording
SMTP server. Part of the pipeline runs (the campaign is fanned out and routed, every
order's stock reserved), then Redis is wiped (FLUSHALL) with the entries that would carry
the rest still unconsumed in it. The reconciler must finish everything from the
database, without a second mail, and the loss must show in /metrics, /readyz and the admin.
"""

from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from campaigns.models import Campaign
from campaigns.services import campaign_create
from inventory.models import Reservation
from notifications.models import Delivery
from orders.models import Order
from orders.services import order_place
from tests.helpers import wait_until
from tests.orders.saga import assert_saga_invariants, set_shop
from users.services import recipients_generate
from workers.models import RedisEpoch
from workers.registry import CONSUMERS

pytestmark = pytest.mark.django_db(transaction=True)

PRODUCTS = {301: (100, 3), 302: (250, 10)}
ACCOUNTS = {1001: 1000, 1002: 200}
ORDERS = [([301], 1001), ([301, 302], 1001), ([302, 302], 1002), ([301, 301], 1001), ([302], 1002)]
RECIPIENTS = 20
WORKER_ENV = {
    "WORKER_BLOCK_MS": "200",
    "WORKER_CLAIM_IDLE_MS": "1000",
    "OUTBOX_RELAY_GRACE_S": "1",
    "CAMPAIGN_FANOUT_CHUNK": "5",
    "EMAIL_BATCH_SIZE": "4",
    "EMAIL_RETRY_POLL_S": "0.2",
    "RECONCILE_AFTER_S": "1",
    "RECONCILE_INTERVAL_S": "0.3",
}
# The first half of the pipeline: fan-out and routing, and the saga's first step.
FIRST_HALF = ["campaign-fanout", "notification-router", "inventory-reserve"]
# Everything the campaign and the saga need, and the reconciler (not the Kafka ingest: no broker here).
EVERYTHING = [*CONSUMERS, "email-retry", "reconciler"]


def metric(client, name: str) -> float | None:
    body = client.get("/metrics").content.decode()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def test_a_flushall_mid_load_loses_no_order_and_no_mail_and_raises_the_alarm(
    own_redis_server, smtp_server, worker_process, anon_client, staff_client
):
    # given: half of the pipeline has run; the rest waits in Redis streams
    set_shop(products=PRODUCTS, accounts=ACCOUNTS)
    recipients_generate(count=RECIPIENTS, seed=3)
    first_half = worker_process("runworker", *FIRST_HALF, env=WORKER_ENV)
    wait_until(lambda: RedisEpoch.objects.exists(), timeout=30, message="the Redis epoch recorded")
    orders = [order_place(customer_id=customer, product_ids=products)[0].pk for products, customer in ORDERS]
    campaign = campaign_create(name="Loss", subject="Hello {{ name }}", body="Dear {{ name }}")
    wait_until(lambda: Reservation.objects.count() == len(ORDERS), timeout=60, message="stock reserved")
    wait_until(
        lambda: Delivery.objects.filter(campaign=campaign, status="pending").count() == RECIPIENTS,
        timeout=60,
        message="every delivery routed",
    )
    assert set(Order.objects.values_list("status", flat=True)) == {"pending"}
    assert smtp_server.messages == []

    # when: Redis loses everything, and the rest of the pipeline and the reconciler start
    own_redis_server.client().flushall()
    wait_until(lambda: RedisEpoch.objects.get().losses == 1, timeout=30, message="the loss recorded")
    rest = worker_process("runworker", *EVERYTHING, env=WORKER_ENV)

    # then: every order reaches a final state and the books balance
    wait_until(
        lambda: Order.objects.filter(status__in=Order.FINAL_STATUSES).count() == len(ORDERS),
        timeout=90,
        interval=0.3,
        message="every order final",
    )
    statuses = assert_saga_invariants(products=PRODUCTS, accounts=ACCOUNTS)
    assert sum(statuses.values()) == len(orders)
    # and the campaign completes, each recipient mailed exactly once
    done = wait_until(
        lambda: Campaign.objects.filter(pk=campaign.pk, status="completed").first(),
        timeout=90,
        interval=0.3,
        message="the campaign completed",
    )
    assert (done.sent_count, done.failed_count) == (RECIPIENTS, 0)
    mails = Counter(message.message_id for message in smtp_server.messages)
    assert len(mails) == RECIPIENTS and set(mails.values()) == {1}
    # and the loss is visible: counted once, the alarm raised, readiness degraded (not failed)
    assert metric(anon_client, "redis_data_lost_total") == 1.0
    assert metric(anon_client, "redis_data_loss_alarm") == 1.0
    ready = anon_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    data = ready.json()["checks"]["redis_data"]
    assert (data["degraded"], data["losses"]) == (True, 1)
    assert data["detail"].startswith("Redis lost its data at ")
    streams_page = staff_client.get("/admin/workers/outboxevent/streams/").content.decode()
    assert 'id="redis-data-lost"' in streams_page
    assert "REDIS DATA LOST" in first_half.output() + rest.output()
    assert first_half.running and rest.running
