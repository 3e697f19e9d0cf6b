"""docker/entrypoint.sh, the image's entry point, run outside Docker against the test's servers.

The same script and subcommands the compose file uses (`migrate`, `web`, `worker <name>`,
`relay`, `health ...`), with the production settings and a PATH whose `python` is the
virtualenv's, as in the image.
"""

import json
import signal

import pytest
import requests

from commsplatform.devservers import free_port
from notifications.models import NotificationMessage
from tests.deploy.conftest import production_environment, run_entrypoint
from tests.helpers import wait_until
from workers.events import Event
from workers.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_ENV = {"WORKER_BLOCK_MS": "200", "WORKER_HEARTBEAT_MAX_AGE_S": "2"}


def post_event(api_client, text: str) -> str:
    response = api_client.post("/event", {"description": text}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["id"]


def test_migrate_applies_migrations_and_exits_0():
    result = run_entrypoint("migrate", env=production_environment())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No migrations to apply." in result.stdout
    assert run_entrypoint("manage", "migrate", "--check", env=production_environment()).returncode == 0


def test_an_unknown_subcommand_or_a_worker_without_a_name_is_a_usage_error():
    env = production_environment()

    unknown = run_entrypoint("serve", env=env)
    nameless = run_entrypoint("worker", env=env)
    unregistered = run_entrypoint("worker", "no-such-consumer", env=env)

    assert (unknown.returncode, nameless.returncode) == (64, 64)
    assert "usage: entrypoint.sh web | migrate | worker <consumer>" in unknown.stderr
    assert unregistered.returncode == 1
    assert "unknown consumer(s): no-such-consumer" in unregistered.stderr


def test_web_serves_the_site_with_production_settings_and_stops_cleanly_on_sigterm(entrypoint, tmp_path):
    # given: the static files collected as the Dockerfile does, and gunicorn started by the entrypoint
    port = free_port()
    env = production_environment(
        {"PORT": str(port), "BIND_HOST": "127.0.0.1", "WEB_CONCURRENCY": "1", "DJANGO_STATIC_ROOT": str(tmp_path)}
    )
    collected = run_entrypoint("manage", "collectstatic", "--noinput", env=env)
    assert collected.returncode == 0, collected.stderr
    web = entrypoint("web", env=env)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: not web.running or _answers(f"{base}/healthz"), timeout=60, message="gunicorn answering")

    # when: probes, a plain-HTTP page, a static file behind the proxy, the healthcheck
    healthz = requests.get(f"{base}/healthz", timeout=10)
    readyz = requests.get(f"{base}/readyz", timeout=10)
    plain_http = requests.get(
        f"{base}/api/v1/", headers={"Host": "comms.example.com"}, allow_redirects=False, timeout=10
    )
    https = {"Host": "comms.example.com", "X-Forwarded-Proto": "https"}
    static = requests.get(f"{base}/static/admin/css/base.css", headers=https, timeout=10)
    wrong_host = requests.get(f"{base}/api/v1/", headers={**https, "Host": "evil.example.net"}, timeout=10)
    health = run_entrypoint("health", "web", env=env)
    exit_code = web.terminate(timeout=60)

    # then
    assert healthz.status_code == 200
    assert readyz.json()["status"] == "ready"
    assert plain_http.status_code == 301
    assert plain_http.headers["Location"] == "https://comms.example.com/api/v1/"
    assert static.status_code == 200
    assert static.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert wrong_host.status_code == 400
    assert health.returncode == 0, health.stderr
    assert exit_code == 0
    log_lines = [line for line in web.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in log_lines]  # every line is a JSON object
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    assert any(r["logger"] == "gunicorn.access" and '"GET /healthz HTTP/1.1" 200' in r["message"] for r in records)
    assert records[-1]["message"] == "Shutting down: Master"


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_web_healthcheck_fails_when_nothing_listens():
    env = production_environment({"PORT": str(free_port())})

    result = run_entrypoint("health", "web", env=env)

    assert result.returncode == 1
    assert "web unreachable" in result.stderr


def test_a_worker_consumes_reports_healthy_and_exits_0_on_sigterm(api_client, entrypoint, redis_client, tmp_path):
    # given: the notifications worker started by the entrypoint, its heartbeat in a directory of its own
    env = production_environment({**WORKER_ENV, "WORKER_HEARTBEAT_DIR": str(tmp_path)})
    before = run_entrypoint("health", "worker", "notifications", env=env)
    worker = entrypoint("worker", "notifications", env=env)

    # when: an event is posted
    event_id = post_event(api_client, "through the entrypoint")

    # then: it is stored, the healthcheck passes, SIGTERM ends the worker with 0
    wait_until(lambda: NotificationMessage.objects.filter(message_id=event_id).exists(), timeout=30)
    health = wait_until(
        lambda: (r := run_entrypoint("health", "worker", "notifications", env=env)).returncode == 0 and r, timeout=30
    )
    assert "ok: notifications" in health.stdout
    assert before.returncode == 1
    assert "group 'demo_consumer_group' does not exist on stream 'NotificationStream'" in before.stderr
    assert worker.terminate(timeout=30) == 0
    assert (tmp_path / "notifications.heartbeat").exists()
    assert redis_client.xinfo_groups("NotificationStream")[0]["pending"] == 0


def test_a_killed_worker_turns_unhealthy_when_its_heartbeat_goes_stale(entrypoint, tmp_path):
    # given: a healthy email-retry worker (an external consumer: no group, heartbeat only)
    env = production_environment({**WORKER_ENV, "WORKER_HEARTBEAT_DIR": str(tmp_path)})
    worker = entrypoint("worker", "email-retry", env=env)
    wait_until(lambda: run_entrypoint("health", "worker", "email-retry", env=env).returncode == 0, timeout=30)

    # when: it is killed with SIGKILL
    worker.kill()

    # then: the healthcheck fails once the heartbeat is older than WORKER_HEARTBEAT_MAX_AGE_S
    failed = wait_until(
        lambda: (r := run_entrypoint("health", "worker", "email-retry", env=env)).returncode == 1 and r, timeout=30
    )
    assert "heartbeat is" in failed.stderr


def test_the_worker_healthcheck_fails_while_redis_is_down(entrypoint, own_redis_server, tmp_path):
    env = production_environment({**WORKER_ENV, "WORKER_HEARTBEAT_DIR": str(tmp_path), "REDIS_RETRIES": "0"})
    entrypoint("worker", "orders-status", env=env)
    wait_until(lambda: run_entrypoint("health", "worker", "orders-status", env=env).returncode == 0, timeout=30)

    own_redis_server.stop()
    result = run_entrypoint("health", "worker", "orders-status", env=env)

    assert result.returncode == 1
    assert "redis unreachable" in result.stderr


def test_the_relay_sends_what_the_outbox_holds_and_exits_0_on_sigterm(entrypoint, redis_client):
    # given: an event whose post-commit send never happened
    event = Event(type="tests.thing.happened", payload={"n": 1})
    OutboxEvent.objects.create(stream="NotificationStream", event_id=event.id, fields=event.to_fields())
    env = production_environment({"OUTBOX_RELAY_GRACE_S": "0"})

    # when: the relay runs
    relay = entrypoint("relay", env=env)

    # then: the event is on the stream, the outbox is empty, the healthcheck passes, SIGTERM ends it with 0
    entries = wait_until(lambda: redis_client.xrange("NotificationStream"), timeout=30)
    wait_until(lambda: not OutboxEvent.objects.exists(), timeout=30)
    health = run_entrypoint("health", "relay", env=env)
    assert [fields["id"] for _, fields in entries] == [event.id]
    assert health.returncode == 0, health.stderr
    assert relay.terminate(timeout=30) == 0


def test_sigterm_reaches_the_process_itself_not_a_shell(entrypoint):
    # exec: the entrypoint's pid is the worker's; SIGTERM to that pid is a graceful stop
    worker = entrypoint("worker", "email-retry", env=production_environment(WORKER_ENV))
    wait_until(lambda: "runworker: email-retry" in worker.output(), timeout=30)

    with open(f"/proc/{worker.pid}/cmdline", "rb") as cmdline:
        argv = cmdline.read().split(b"\0")
    worker.send_signal(signal.SIGTERM)

    assert argv[1:4] == [b"manage.py", b"runworker", b"email-retry"]
    assert worker.wait(30) == 0
