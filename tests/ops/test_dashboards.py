"""The Grafana dashboards and the alert rules only use metrics that /metrics serves.

A renamed or dropped metric leaves a panel empty and an alert silent without any error;
this test reads every PromQL expression and checks each metric name in it against a real
scrape of a stack with a consumer group, a campaign being sent and a Kafka topic.
"""

import json
import re
import uuid

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from campaigns.models import Campaign
from telemetry.simulation import topic_ensure
from tests.helpers import REPO_ROOT
from workers.deadletter import dead_letter_stream
from workers.registry import CONSUMERS

GRAFANA_DIR = REPO_ROOT / "docker" / "grafana"
RULES = REPO_ROOT / "docker" / "prometheus" / "rules" / "commsplatform.yml"
# Series Prometheus itself writes for each target, not the target's /metrics.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def dashboard_exprs() -> dict[str, str]:
    exprs = {}
    for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                exprs[f"{path.name}: {panel['title']} {target['refId']}"] = target["expr"]
    return exprs


def rule_exprs() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {f"rule {rule['alert']}": rule["expr"] for group in groups for rule in group["rules"]}


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression: identifiers outside strings, label
    matchers, ranges and grouping clauses, that are not functions or keywords."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped)
    names = re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", stripped)
    return {name for name in names if name not in PROMQL_WORDS}


def test_the_expression_parser_finds_metric_names_and_nothing_else():
    expr = (
        'histogram_quantile(0.95, sum by (route, le) (rate(http_request_duration_seconds_bucket{route=~"a.*"}[5m])))'
        " / on(route) group_left max without (x) (time() - consumer_last_heartbeat_timestamp_seconds offset 5m) > 1e3"
    )

    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "consumer_last_heartbeat_timestamp_seconds"}


def test_the_dashboard_is_provisioned_from_the_prometheus_data_source_it_names():
    datasources = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "commsplatform.yaml").read_text())
    uids = {source["uid"] for source in datasources["datasources"]}
    panels = [p for path in (GRAFANA_DIR / "dashboards").glob("*.json") for p in json.loads(path.read_text())["panels"]]

    assert providers["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    assert {p["datasource"]["uid"] for p in panels if p["type"] != "row"} == uids == {"prometheus"}


@pytest.mark.django_db(transaction=True)
def test_every_metric_of_the_dashboards_and_the_rules_is_in_a_real_scrape(
    anon_client, redis_client, kafka_broker, settings
):
    # given a stack with work in flight: a group with a pending entry and lag, a dead
    # letter, a campaign being sent, a Kafka topic the ingest's group has not read yet
    spec = CONSUMERS["email-sender"]
    for index in range(3):
        redis_client.xadd(spec.stream_name, {"n": str(index)})
    redis_client.xgroup_create(spec.stream_name, spec.group_name, id="0")
    redis_client.xreadgroup(spec.group_name, "sender-0", {spec.stream_name: ">"}, count=1)
    redis_client.xadd(dead_letter_stream(spec.stream_name), {"error": "boom"})
    Campaign.objects.create(
        name="Campaign ABCDE", subject="s", body="b", from_email="test@test.com", status="sending", sent_count=3
    )
    settings.KAFKA_TOPIC, settings.KAFKA_LAG_CACHE_S = f"dash-{uuid.uuid4().hex[:8]}", 0
    topic_ensure(bootstrap_servers=kafka_broker.bootstrap, topic=settings.KAFKA_TOPIC, partitions=1)
    anon_client.get("/healthz")

    # when /metrics is scraped
    body = anon_client.get("/metrics").content.decode()
    served = {sample.name for family in text_string_to_metric_families(body) for sample in family.samples}

    # then every name an expression uses is served (histogram _bucket/_sum/_count included)
    exprs = {**dashboard_exprs(), **rule_exprs()}
    used = {name: metric_names(expr) for name, expr in exprs.items()}
    missing = {
        where: sorted(names - served - SCRAPE_SERIES) for where, names in used.items() if names - served - SCRAPE_SERIES
    }
    assert missing == {}
    assert len(exprs) > 40
    assert {"http_request_duration_seconds_bucket", "kafka_consumer_lag", "campaign_sent_total"} <= set().union(
        *used.values()
    )
