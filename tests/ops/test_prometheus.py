"""docker/prometheus/: the alert rules pass promtool's checks and unit tests, and a real
Prometheus server scrapes a live /metrics and answers queries on its figures."""

import json
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from campaigns.models import Campaign
from commsplatform.devservers import free_port
from tests.helpers import REPO_ROOT, wait_until
from tests.sysdeps import require_program
from workers.deadletter import dead_letter_stream
from workers.models import OutboxEvent
from workers.registry import CONSUMERS

PROMETHEUS_DIR = REPO_ROOT / "docker" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "commsplatform.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "commsplatform_test.yml"


def alert_names() -> set[str]:
    return {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}


def test_the_rules_and_the_config_pass_promtool_check():
    promtool = require_program("promtool")

    rules = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    config = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(PROMETHEUS_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
    )

    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in rules.stdout
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_has_a_summary_a_description_and_a_runbook():
    annotations = {
        rule["alert"]: set(rule["annotations"])
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    }

    assert {name: keys for name, keys in annotations.items() if keys != {"summary", "description", "runbook"}} == {}


def test_every_alert_is_unit_tested_firing_and_quiet_and_the_unit_tests_pass():
    promtool = require_program("promtool")
    fires, quiet = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])

    result = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True)

    assert fires == alert_names()
    assert quiet == alert_names()
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_catch_a_rule_that_fires_too_early(tmp_path):
    # given the rules with the pending-age threshold lowered from 300 s to 10 s
    promtool = require_program("promtool")
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / RULES.name).write_text(
        RULES.read_text().replace("oldest_pending_age_seconds > 300", "oldest_pending_age_seconds > 10")
    )
    (tmp_path / "tests" / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    # when the unit tests run against them
    result = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name)], capture_output=True, text=True
    )
    # then the quiet case of that alert fails
    assert result.returncode == 1
    assert "alertname: PendingEntryTooOld, time: 10m" in result.stdout + result.stderr


class Prometheus:
    def __init__(self, url: str):
        self.url = url

    def query(self, expr: str) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}") as reply:
            body = json.load(reply)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expr: str) -> str | None:
        result = self.query(expr)
        return result[0]["value"][1] if result else None


@pytest.fixture
def prometheus(live_server, tmp_path: Path) -> Iterator[Prometheus]:
    """A real Prometheus scraping the live server's /metrics every second, with the rules."""
    binary = require_program("prometheus")
    target = urllib.parse.urlsplit(live_server.url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [{"job_name": "commsplatform", "static_configs": [{"targets": [target]}]}],
            }
        )
    )
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "prometheus.log", "w"),
    )
    try:
        server = Prometheus(f"http://127.0.0.1:{port}")

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as reply:
                    return reply.status == 200
            except OSError:
                return False

        wait_until(ready, timeout=30, interval=0.2, message="Prometheus ready")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_real_prometheus_scrapes_the_lag_pending_entries_and_dead_letters_of_a_group(
    settings, redis_client, prometheus
):
    # given the email stream with 5 entries: its group read 1 (pending, un-acked), 4 are
    # not delivered yet (lag), and 2 entries in its dead-letter stream
    settings.KAFKA_LAG_METRICS = False
    spec = CONSUMERS["email-sender"]
    stream, group = spec.stream_name, spec.group_name
    for index in range(5):
        redis_client.xadd(stream, {"n": str(index)})
    redis_client.xgroup_create(stream, group, id="0")
    redis_client.xreadgroup(group, "sender-0", {stream: ">"}, count=1)
    redis_client.xadd(dead_letter_stream(stream), {"error": "boom", "attempts": "5"})
    redis_client.xadd(dead_letter_stream(stream), {"error": "boom", "attempts": "5"})
    labels = f'stream="{stream}",group="{group}"'

    # when Prometheus has scraped the live server
    wait_until(lambda: prometheus.value('up{job="commsplatform"}') == "1", timeout=30, interval=0.2)

    # then it answers the exact figures, and no alert is firing on them yet
    assert prometheus.value(f"stream_group_lag{{{labels}}}") == "4"
    assert prometheus.value(f"stream_group_pending{{{labels}}}") == "1"
    assert prometheus.value(f'stream_dead_letters{{stream="{stream}"}}') == "2"
    assert prometheus.value(f'stream_length{{stream="{stream}"}}') == "5"
    assert prometheus.value('consumer_last_heartbeat_timestamp_seconds{consumer="email-sender"}') is not None
    assert prometheus.value("redis_writable") == "1"
    assert prometheus.query('ALERTS{alertstate="firing"}') == []


@pytest.mark.django_db
def test_the_gauges_the_rules_read_report_the_outbox_campaigns_orders_and_a_redis_refusing_writes(
    anon_client, own_redis_server, settings
):
    # given two outbox rows, a campaign being sent, and a Redis out of memory under noeviction
    settings.KAFKA_LAG_METRICS = False
    for _ in range(2):
        OutboxEvent.objects.create(stream="orders", event_id=uuid.uuid4(), fields={"type": "t"})
    campaign = Campaign.objects.create(
        name="Campaign QWERT", subject="s", body="b", from_email="test@test.com", status="sending", sent_count=7
    )
    client = own_redis_server.client()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")

    # when /metrics is scraped
    body = anon_client.get("/metrics").content.decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }

    # then
    assert samples[("redis_up", ())] == 1.0
    assert samples[("redis_writable", ())] == 0.0
    assert samples[("outbox_pending_events", ())] == 2.0
    assert samples[("outbox_oldest_event_age_seconds", ())] >= 0.0
    assert samples[("campaign_sent_total", (("campaign", str(campaign.pk)),))] == 7.0
    assert samples[("campaigns_by_status", (("status", "sending"),))] == 1.0
    assert samples[("orders_by_status", (("status", "pending"),))] == 0.0
