"""Pausing and resuming a consumer: a real worker subprocess under load, the staff API, the
command, the admin buttons, and a Redis that lost the flag (the database wins)."""

import threading
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from notifications.events import MESSAGE_PUBLISHED
from notifications.models import NotificationMessage
from tests.helpers import wait_until
from workers.events import Event
from workers.heartbeat import live_replicas
from workers.metrics import consumer_counters
from workers.models import ConsumerPause
from workers.publish import publish
from workers.steering import consumer_pause, is_paused, paused_key

STREAM, GROUP = "NotificationStream", "demo_consumer_group"


def message(n: int) -> Event:
    timestamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return Event(type=MESSAGE_PUBLISHED, payload={"id": n, "description": f"message {n}", "timestamp": timestamp})


class Producer(threading.Thread):
    """Publishes a message every few milliseconds until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.halt = threading.Event()
        self.published: list[str] = []

    def run(self):
        n = 0
        while not self.halt.wait(0.005):
            event = message(n)
            publish(STREAM, event)
            self.published.append(event.id)
            n += 1


def group_position(redis_client) -> tuple[str, int]:
    [group] = [g for g in redis_client.xinfo_groups(STREAM) if g["name"] == GROUP]
    return group["last-delivered-id"], group["pending"]


@pytest.mark.django_db(transaction=True)
def test_a_paused_worker_reads_nothing_under_load_and_resumed_processes_everything_once(
    redis_client, worker_process, tmp_path, settings
):
    # given a worker (two threads) consuming while a producer publishes
    settings.WORKER_HEARTBEAT_DIR = str(tmp_path)
    env = {"WORKER_BLOCK_MS": "200", "WORKER_PAUSE_CHECK_S": "0.2", "WORKER_HEARTBEAT_DIR": str(tmp_path)}
    worker_process("runworker", "notifications", "--consumer-name", "w1", env=env)
    producer = Producer()
    producer.start()
    try:
        wait_until(lambda: NotificationMessage.objects.count() >= 20, timeout=30)
        # when it is paused (the command) and every replica says so
        call_command("consumers", "pause", "notifications", "--reason", "load test", "--by", "tester")
        wait_until(lambda: live_replicas("notifications", redis_client) == {"w1": "paused"}, timeout=10)
        stored, position = NotificationMessage.objects.count(), group_position(redis_client)
        published_before = len(producer.published)
        # then nothing is read or stored across a wait while the producer goes on
        threading.Event().wait(1.5)
        assert len(producer.published) > published_before
        assert NotificationMessage.objects.count() == stored
        assert group_position(redis_client) == position
        call_command("worker_health", "notifications")  # paused is healthy
    finally:
        producer.halt.set()
        producer.join()
    # when it is resumed: every published message is stored once, nothing pending
    call_command("consumers", "resume", "notifications", "--by", "tester")
    published = producer.published
    wait_until(lambda: NotificationMessage.objects.count() == len(published), timeout=30)
    wait_until(lambda: group_position(redis_client)[1] == 0, timeout=10)
    stored_ids = sorted(str(i) for i in NotificationMessage.objects.values_list("event_id", flat=True))
    assert stored_ids == sorted(published)
    assert consumer_counters("notifications")["processed"] == len(published)
    wait_until(lambda: live_replicas("notifications", redis_client) == {"w1": "running"}, timeout=10)


@pytest.mark.django_db(transaction=True)
def test_entries_pending_when_paused_stay_pending_and_are_not_claimed(redis_client, worker_process):
    # given an entry a dead consumer left pending, and the consumer paused
    consumer_pause(name="notifications", by="tester")
    redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    [entry_id] = [publish(STREAM, message(1))]
    redis_client.xreadgroup(GROUP, "dead", {STREAM: ">"}, count=10)
    # when a worker with a short claim idle time runs paused
    env = {"WORKER_BLOCK_MS": "200", "WORKER_PAUSE_CHECK_S": "0.2", "WORKER_CLAIM_IDLE_MS": "200"}
    worker_process("runworker", "notifications", "--consumer-name", "w2", env=env)
    wait_until(lambda: live_replicas("notifications", redis_client) == {"w2": "paused"}, timeout=20)
    threading.Event().wait(1.0)
    # then the entry is still the dead consumer's, un-acked, and nothing was stored
    [info] = redis_client.xpending_range(STREAM, GROUP, "-", "+", 10)
    assert (info["message_id"], info["consumer"], info["times_delivered"]) == (entry_id, "dead", 1)
    assert NotificationMessage.objects.count() == 0
    # and resumed, it is reclaimed and stored
    call_command("consumers", "resume", "notifications")
    wait_until(lambda: NotificationMessage.objects.count() == 1, timeout=20)
    wait_until(lambda: redis_client.xpending(STREAM, GROUP)["pending"] == 0, timeout=10)


@pytest.mark.django_db
def test_the_staff_api_pauses_lists_and_resumes(staff_client, redis_client):
    response = staff_client.post("/api/v1/consumers/weather/pause/", {"reason": "maintenance"}, format="json")
    assert response.status_code == 200
    assert response.json()["paused"] is True
    assert response.json()["changed_by"] == "api:staff"
    assert redis_client.get(paused_key("weather")) == "1"
    assert ConsumerPause.objects.get(name="weather").reason == "maintenance"
    listing = {row["name"]: row for row in staff_client.get("/api/v1/consumers/").json()}
    assert (listing["weather"]["paused"], listing["weather"]["paused_by"]) == (True, "api:staff")
    assert listing["relay"]["paused"] is False and listing["relay"]["kind"] == "periodic"
    response = staff_client.post("/api/v1/consumers/weather/resume/", format="json")
    assert (response.status_code, response.json()["paused"]) == (200, False)
    assert redis_client.get(paused_key("weather")) == "0"


@pytest.mark.django_db
def test_pausing_an_unknown_consumer_is_a_404_and_changes_nothing(staff_client, redis_client):
    response = staff_client.post("/api/v1/consumers/nope/pause/", format="json")
    assert response.status_code == 404
    assert response.json()["status"] == 404
    assert not ConsumerPause.objects.exists()
    assert redis_client.keys("workers:paused:*") == []
    with pytest.raises(CommandError):
        call_command("consumers", "pause", "nope")
    assert not ConsumerPause.objects.exists()


@pytest.mark.django_db
def test_a_pause_flag_lost_by_redis_is_restored_from_the_database(redis_client):
    # given a paused consumer whose flag Redis lost (restart without data, flush)
    consumer_pause(name="email-sender", by="tester")
    redis_client.flushall()
    # when a loop reads its flag: still paused, and the flag is back in Redis
    assert is_paused("email-sender") is True
    assert redis_client.get(paused_key("email-sender")) == "1"
    assert is_paused("weather") is False


@pytest.mark.django_db
def test_the_admin_pause_button_asks_then_pauses_with_csrf(staff_user, redis_client):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    page = client.get("/admin/workers/outboxevent/streams/")
    assert b'href="/admin/workers/outboxevent/streams/consumers/weather/pause/"' in page.content
    confirm = client.get("/admin/workers/outboxevent/streams/consumers/weather/pause/")
    assert confirm.status_code == 200 and b"Yes, pause weather" in confirm.content
    # without the CSRF token: refused, nothing changed
    assert client.post("/admin/workers/outboxevent/streams/consumers/weather/pause/").status_code == 403
    assert not ConsumerPause.objects.exists()
    token = confirm.context["csrf_token"]
    response = client.post(
        "/admin/workers/outboxevent/streams/consumers/weather/pause/",
        {"csrfmiddlewaretoken": str(token), "reason": "x"},
    )
    assert response.status_code == 302
    assert ConsumerPause.objects.get(name="weather").changed_by == "admin:staff"
    page = client.get("/admin/workers/outboxevent/streams/")
    assert b'href="/admin/workers/outboxevent/streams/consumers/weather/resume/"' in page.content


@pytest.mark.django_db
def test_metrics_report_the_paused_consumer(client, redis_client):
    consumer_pause(name="weather", by="tester")
    body = client.get("/metrics").content.decode()
    assert 'consumer_paused{consumer="weather"} 1.0' in body
    assert 'consumer_paused{consumer="relay"} 0.0' in body
