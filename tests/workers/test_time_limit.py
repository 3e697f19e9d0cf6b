"""A handler stuck past its time limit: a real SMTP server that hangs in DATA longer than
email-sender's limit. The worker reports it (ERROR line, metrics) and turns unhealthy; the
entry stays pending, and after the restart another consumer reclaims and sends it."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from notifications.models import Delivery
from notifications.services import notification_send
from tests.helpers import wait_until
from workers.metrics import consumer_counters

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = GROUP = "email-notification"


def test_a_stuck_smtp_send_turns_the_worker_unhealthy_and_its_entry_is_reclaimed(
    smtp_server, redis_client, worker_process, tmp_path, settings, client
):
    # given a mail server that answers DATA only after a minute, and a 1 s handler limit
    settings.WORKER_HEARTBEAT_DIR = str(tmp_path)
    smtp_server.delay_data(60)
    env = {
        "EMAIL_SENDER_HANDLER_TIMEOUT_S": "1",
        "EMAIL_SENDER_CONCURRENCY": "1",
        "EMAIL_TIMEOUT": "120",
        "EMAIL_SENDING_LEASE_S": "1",
        "EMAIL_RETRY_POLL_S": "0.2",
        "WORKER_CLAIM_IDLE_MS": "1000",
        "WORKER_BLOCK_MS": "200",
        "WORKER_HEARTBEAT_DIR": str(tmp_path),
    }
    worker = worker_process("runworker", "email-sender", "--consumer-name", "stuck", env=env)
    wait_until(lambda: _health_failure("email-sender") == "ok", timeout=30, message="a healthy worker first")
    with transaction.atomic():
        delivery = notification_send(email="ada@example.com", subject="Hi", body="Hello", dedupe_key="stuck-1")
    # when the send hangs past the limit
    health = wait_until(lambda: "stuck" in (h := _health_failure("email-sender")) and h, timeout=30)
    # then the worker is unhealthy, the metrics say so, the entry is pending and logged
    assert "stuck" in health and "past its 1s limit" in health
    stuck = 'consumer_stuck{consumer="email-sender"} 1.0'
    body = wait_until(lambda: stuck in (b := client.get("/metrics").content.decode()) and b, timeout=10)
    assert 'consumer_handler_overruns_total{consumer="email-sender"} 1.0' in body
    [pending] = redis_client.xpending_range(STREAM, GROUP, "-", "+", 10)
    assert pending["consumer"] == "stuck-0"
    assert f"entries {pending['message_id']}" in wait_until(lambda: "STUCK" in worker.output() and worker.output())
    assert smtp_server.messages == []
    # when the supervisor restarts it (kill -9) against a mail server that answers again
    worker.kill()
    smtp_server.delay_data(0)
    worker_process("runworker", "email-sender", "email-retry", "--consumer-name", "rescuer", env=env)
    # then another consumer reclaims the entry and the mail is sent
    wait_until(lambda: Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.SENT, timeout=30)
    wait_until(lambda: redis_client.xpending(STREAM, GROUP)["pending"] == 0, timeout=10)
    assert consumer_counters("email-sender")["reclaimed"] >= 1
    assert {m.rcpt_tos for m in smtp_server.wait_for(1)} == {("ada@example.com",)}


def _health_failure(name: str) -> str:
    """ "ok" while `worker_health name` passes, else its reason."""
    try:
        call_command("worker_health", name, stdout=StringIO())
    except CommandError as exc:
        return str(exc)
    return "ok"
