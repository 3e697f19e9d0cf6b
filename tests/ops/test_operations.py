"""Probes, metrics, the streams view, the consumer table and token revocation."""

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from workers.events import Event
from workers.publish import publish
from workers.registry import CONSUMERS, EXTERNAL_CONSUMERS, all_entries, all_names

pytestmark = pytest.mark.django_db


def test_liveness_and_readiness_are_public(anon_client):
    live = anon_client.get("/healthz")
    ready = anon_client.get("/readyz")

    assert live.status_code == 200
    assert live.json()["status"] == "ok"
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["database"]["ok"] is True
    assert ready.json()["checks"]["redis"]["ok"] is True


def test_readiness_fails_while_redis_is_down(anon_client, own_redis_server):
    own_redis_server.stop()

    response = anon_client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "not-ready"
    assert response.json()["checks"]["redis"]["ok"] is False
    assert response.json()["checks"]["database"]["ok"] is True


def test_metrics_report_http_requests_streams_and_consumers(anon_client, api_client, redis_client):
    api_client.post("/event", {"description": "counted"}, format="json")
    redis_client.xgroup_create("NotificationStream", "demo_consumer_group", id="0")

    body = anon_client.get("/metrics").content.decode()

    assert 'http_requests_total{method="POST",route="event",status="200"}' in body
    assert 'stream_length{stream="NotificationStream"} 1.0' in body
    assert 'stream_group_lag{group="demo_consumer_group",stream="NotificationStream"} 1.0' in body
    assert 'consumer_processed_total{consumer="notifications"} 0.0' in body
    assert "redis_up 1.0" in body


def test_the_streams_view_is_for_staff(api_client, staff_client, redis_client):
    publish("events", Event(type="tests.thing.happened", payload={}))
    redis_client.xgroup_create("NotificationStream", "demo_consumer_group", id="0")

    forbidden = api_client.get("/api/v1/streams/")
    streams = {s["stream"]: s for s in staff_client.get("/api/v1/streams/").json()}

    assert forbidden.status_code == 403
    events = streams["NotificationStream"]
    assert events["length"] == 1
    assert events["dead_letters"] == 0
    assert events["groups"] == [
        {"name": "demo_consumer_group", "consumers": 0, "pending": 0, "lag": 1, "last_delivered_id": "0-0"}
    ]
    assert set(events["consumers"]) == {"notifications"}


def test_the_admin_streams_page_renders_for_staff(client, django_user_model, redis_client):
    admin = django_user_model.objects.create_superuser("ops", "ops@example.com", "a-long-password-1")
    client.force_login(admin)

    page = client.get("/admin/workers/outboxevent/streams/")

    assert page.status_code == 200
    assert b"NotificationStream" in page.content


def test_runworker_list_prints_one_line_per_consumer(capsys):
    call_command("runworker", "--list")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["NAME", "KIND", "SOURCE", "GROUP"]
    assert [line.split()[:2] for line in lines[1:]] == [[entry.name, entry.kind] for entry in all_entries()]
    assert {entry.kind for entry in all_entries()} == {"stream", "kafka", "periodic"}
    assert [*CONSUMERS, *EXTERNAL_CONSUMERS] == all_names()


def test_make_run_runs_every_registered_consumer_exactly_once():
    # given the worker processes `make run` supervises
    from commsplatform.devstack import worker_commands

    # when each runworker command line is resolved to the consumers it runs
    ran: list[str] = []
    for argv in worker_commands().values():
        args = argv[argv.index("runworker") + 1 :]
        excluded = {args[i + 1] for i, arg in enumerate(args) if arg == "--exclude"}
        named = [
            arg for i, arg in enumerate(args) if not arg.startswith("--") and (i == 0 or args[i - 1] != "--exclude")
        ]
        ran += [n for n in all_names() if n not in excluded] if "--all" in args else named

    # then every registry entry runs, and none twice
    assert sorted(ran) == sorted(all_names())


def test_runworker_refuses_an_unknown_exclusion_and_exclude_without_all():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unknown consumer"):
        call_command("runworker", "--all", "--exclude", "no-such-consumer")
    with pytest.raises(CommandError, match="--exclude goes with --all"):
        call_command("runworker", "notifications", "--exclude", "weather")


def test_a_deleted_token_is_refused_at_once(api_client, api_user):
    assert api_client.get("/api/v1/events/").status_code == 200

    Token.objects.filter(user=api_user).delete()

    assert api_client.get("/api/v1/events/").status_code == 401


def test_sigterm_lets_the_worker_finish_and_exit_cleanly(worker_process, transactional_db, redis_client):
    worker = worker_process("runworker", "notifications")
    from tests.helpers import wait_until

    wait_until(lambda: redis_client.exists("NotificationStream"), timeout=20)

    assert worker.terminate() == 0
    assert "stopped" in worker.output()
