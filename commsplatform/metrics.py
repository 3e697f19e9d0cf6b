"""Prometheus metrics: HTTP requests from a middleware, stream and consumer figures from
Redis at scrape time (so any web replica reports the whole system).

Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR (docker/gunicorn.conf.py
does) so the HTTP counters of all workers are summed.
"""

import logging
import os
import time

import redis
from django.apps import apps
from django.db import DatabaseError
from django.db.models import Count, Min
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.urls.resolvers import RegexPattern
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from commsplatform.health import WRITE_PROBE_KEY
from workers.connection import REFUSED_WRITE_ERRORS, UNAVAILABLE_ERRORS, get_redis
from workers.heartbeat import live_replicas
from workers.metrics import CONSUMER_COUNTERS, STREAM_COUNTERS, consumer_counters, consumer_key, stream_counters
from workers.registry import CONSUMERS, all_names
from workers.stats import StreamStats, all_stream_stats
from workers.steering import is_paused, paused_key

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        request_observe(request.method, _route(request), response.status_code, started)
        return response


def request_observe(method: str, route: str, status: int, started: float) -> None:
    """Count one answered request and its latency since `started` (time.perf_counter()):
    the middleware's figures, also for requests answered before it (commsplatform.fastpath)."""
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


UNMATCHED = "unmatched"


def _route(request) -> str:
    """The route as written in the URL conf (`api/v1/orders/<int:order_id>/`), not the
    path, so ids do not explode the label set. A route written as a regex is labelled by
    its URL name (`admin:app_list`); a request no named route matched (the JSON-404
    catch-all takes any path) is `unmatched`."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED
    if match.url_name is None:
        return UNMATCHED
    # On success the last entry of `tried` is the chain of patterns that matched.
    chain = match.tried[-1] if match.tried else []
    if any(isinstance(pattern.pattern, RegexPattern) for pattern in chain):
        return match.view_name
    return match.route


class StreamCollector(Collector):
    """Stream length/pending/lag/dead letters and consumer counters, read from Redis."""

    def collect(self):
        length = GaugeMetricFamily("stream_length", "Entries in the stream", labels=["stream"])
        dead = GaugeMetricFamily("stream_dead_letters", "Entries in <stream>:dlq", labels=["stream"])
        pending = GaugeMetricFamily("stream_group_pending", "Delivered, un-acked entries", labels=["stream", "group"])
        lag = GaugeMetricFamily(
            "stream_group_lag", "Entries not yet delivered to the group", labels=["stream", "group"]
        )
        up = GaugeMetricFamily("redis_up", "1 when Redis answered the scrape")
        consumer = {
            name: CounterMetricFamily(f"consumer_{name}", f"Consumer events {name}", labels=["consumer"])
            for name in CONSUMER_COUNTERS
        }
        stream_counter = {
            name: CounterMetricFamily(f"stream_{name}", f"Stream {name}", labels=["stream"]) for name in STREAM_COUNTERS
        }
        writable = GaugeMetricFamily("redis_writable", "1 when Redis took the scrape's write probe (as /readyz)")
        steering = _steering_families()
        oldest = heartbeat = None
        try:
            stats = all_stream_stats()
            for item in stats:
                length.add_metric([item.stream], item.length)
                dead.add_metric([item.stream], item.dead_letters)
                for group in item.groups:
                    pending.add_metric([item.stream, group.name], group.pending)
                    if group.lag is not None:
                        lag.add_metric([item.stream, group.name], group.lag)
                for name, value in stream_counters(item.stream).items():
                    stream_counter[name].add_metric([item.stream], value)
            for consumer_name in all_names():
                for name, value in consumer_counters(consumer_name).items():
                    consumer[name].add_metric([consumer_name], value)
            _add_steering(steering)
            oldest, heartbeat = _group_liveness(stats)
            writable.add_metric([], _redis_writable())
            up.add_metric([], 1)
        except UNAVAILABLE_ERRORS as exc:
            logger.warning("metrics: Redis unavailable: %s", exc)
            up.add_metric([], 0)
            writable.add_metric([], 0)
        yield from (length, dead, pending, lag, up, writable, *consumer.values(), *stream_counter.values())
        yield from steering
        if oldest is not None and heartbeat is not None:
            yield from (oldest, heartbeat)


def _steering_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily]:
    return (
        GaugeMetricFamily("consumer_paused", "1 while an operator has paused the entry", labels=["consumer"]),
        GaugeMetricFamily("consumer_stuck", "Processes whose handler runs past its time limit", labels=["consumer"]),
        CounterMetricFamily(
            "consumer_handler_overruns", "Handler calls that ran past their time limit", labels=["consumer"]
        ),
    )


def _add_steering(families: tuple[GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily]) -> None:
    """Pause flags (a flag Redis lost is read from the database), stuck replicas and overruns."""
    paused, stuck, overruns = families
    client = get_redis()
    names = all_names()
    # One pipeline of single-key reads (not MGET: on a Redis Cluster the keys sit in
    # different slots).
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.get(paused_key(name))
    for name in names:
        pipe.hget(consumer_key(name), "handler_overruns")
    answers = pipe.execute()
    flags, counts = answers[: len(names)], answers[len(names) :]
    for name, flag, count in zip(names, flags, counts, strict=True):
        try:
            value = flag == "1" if flag is not None else is_paused(name, client)
        except DatabaseError:
            value = False
        paused.add_metric([name], 1 if value else 0)
        stuck.add_metric([name], sum(1 for state in live_replicas(name, client).values() if state == "stuck"))
        overruns.add_metric([name], int(count or 0))


def _group_liveness(stats: list[StreamStats]) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    """The age of each group's oldest un-acked entry (XPENDING's smallest id is a
    millisecond timestamp), and each registered consumer's last heartbeat: the last time
    any of its processes polled its group (XINFO CONSUMERS `idle` is reset by every
    XREADGROUP, blocking ones included), so a worker whose loop died or hangs stops it.
    One pipelined round trip for every group."""
    oldest = GaugeMetricFamily(
        "stream_group_oldest_pending_age_seconds",
        "Age of the oldest delivered, un-acked entry (0: none pending)",
        labels=["stream", "group"],
    )
    heartbeat = GaugeMetricFamily(
        "consumer_last_heartbeat_timestamp_seconds",
        "When a process of the consumer last read its group (XINFO CONSUMERS idle)",
        labels=["consumer"],
    )
    groups = [(item.stream, group.name) for item in stats for group in item.groups]
    if not groups:
        return oldest, heartbeat
    pipe = get_redis().pipeline(transaction=False)
    for stream, group in groups:
        pipe.xpending(stream, group)
        pipe.xinfo_consumers(stream, group)
    replies = pipe.execute(raise_on_error=False)
    now = time.time()
    last_seen: dict[tuple[str, str], float] = {}
    for index, (stream, group) in enumerate(groups):
        summary, consumers = replies[2 * index], replies[2 * index + 1]
        if isinstance(summary, Exception) or isinstance(consumers, Exception):
            continue  # the group went away between the two reads
        age = 0.0
        if summary["pending"] and summary["min"]:
            age = max(0.0, now - int(summary["min"].split("-")[0]) / 1000)
        oldest.add_metric([stream, group], age)
        if consumers:
            last_seen[(stream, group)] = now - min(c["idle"] for c in consumers) / 1000
    for name, spec in CONSUMERS.items():
        seen = last_seen.get((spec.stream_name, spec.group_name))
        if seen is not None:
            heartbeat.add_metric([name], seen)
    return oldest, heartbeat


def _redis_writable() -> int:
    """The readiness probe's write (commsplatform.health.check_redis): an out-of-memory
    (`noeviction`) or read-only Redis answers PING but refuses every XADD."""
    try:
        get_redis().set(WRITE_PROBE_KEY, "1", px=10_000)
    except REFUSED_WRITE_ERRORS:
        return 0
    except redis.ResponseError:  # e.g. NOPERM
        return 0
    return 1


class DatabaseCollector(Collector):
    """Figures the database holds: the outbox backlog, the campaigns being sent and the
    saga's outcomes. A few aggregate queries on indexed columns per scrape."""

    def collect(self):
        outbox = GaugeMetricFamily("outbox_pending_events", "Outbox rows not sent to Redis yet")
        outbox_age = GaugeMetricFamily("outbox_oldest_event_age_seconds", "Age of the oldest outbox row (0: none)")
        campaigns = GaugeMetricFamily("campaigns_by_status", "Campaigns in each status", labels=["status"])
        orders = GaugeMetricFamily("orders_by_status", "Orders in each saga status", labels=["status"])
        deliveries = {
            outcome: CounterMetricFamily(
                f"campaign_{outcome}", f"Deliveries {outcome} of a campaign being sent", labels=["campaign"]
            )
            for outcome in ("sent", "failed", "skipped")
        }
        expected = GaugeMetricFamily(
            "campaign_deliveries_expected", "Deliveries a campaign being sent will make", labels=["campaign"]
        )
        try:
            backlog = apps.get_model("workers", "OutboxEvent").objects.aggregate(
                count=Count("id"), oldest=Min("created_at")
            )
            campaign_model = apps.get_model("campaigns", "Campaign")
            by_status = dict(campaign_model.objects.values_list("status").annotate(n=Count("id")).order_by())
            sending = list(campaign_model.objects.filter(status=campaign_model.Status.SENDING))
            order_model = apps.get_model("orders", "Order")
            order_statuses = dict(order_model.objects.values_list("status").annotate(n=Count("id")).order_by())
        except DatabaseError as exc:
            logger.warning("metrics: database unavailable: %s", exc)
            return
        outbox.add_metric([], backlog["count"])
        oldest = backlog["oldest"]
        outbox_age.add_metric([], max(0.0, time.time() - oldest.timestamp()) if oldest else 0.0)
        for status in campaign_model.Status.values:
            campaigns.add_metric([status], by_status.get(status, 0))
        for status in order_model.Status.values:
            orders.add_metric([status], order_statuses.get(status, 0))
        for campaign in sending:
            label = [str(campaign.pk)]
            deliveries["sent"].add_metric(label, campaign.sent_count)
            deliveries["failed"].add_metric(label, campaign.failed_count)
            deliveries["skipped"].add_metric(label, campaign.skipped_count)
            expected.add_metric(label, campaign.progress_total)
        yield from (outbox, outbox_age, campaigns, orders, *deliveries.values(), expected)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


# Extra collectors (apps register theirs, e.g. the weather circuit breaker) are added to
# the registry served by /metrics.
EXTRA_COLLECTORS: list[Collector] = [StreamCollector(), DatabaseCollector()]


def metrics_view(request) -> HttpResponse:
    registry = _registry()
    body = generate_latest(registry)
    scrape = CollectorRegistry()
    for collector in EXTRA_COLLECTORS:
        scrape.register(collector)
    body += generate_latest(scrape)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
