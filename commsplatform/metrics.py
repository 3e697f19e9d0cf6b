"""Prometheus metrics: HTTP requests from a middleware, stream and consumer figures from
Redis at scrape time (so any web replica reports the whole system).

Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR (docker/gunicorn.conf.py
does) so the HTTP counters of all workers are summed.
"""

import logging
import os
import time

from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.urls.resolvers import RegexPattern
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from workers.connection import UNAVAILABLE_ERRORS
from workers.metrics import CONSUMER_COUNTERS, STREAM_COUNTERS, consumer_counters, stream_counters
from workers.registry import all_names
from workers.stats import all_stream_stats

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
        route = _route(request)
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        return response


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
        try:
            for item in all_stream_stats():
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
            up.add_metric([], 1)
        except UNAVAILABLE_ERRORS as exc:
            logger.warning("metrics: Redis unavailable: %s", exc)
            up.add_metric([], 0)
        yield from (length, dead, pending, lag, up, *consumer.values(), *stream_counter.values())


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


# Extra collectors (apps register theirs, e.g. the weather circuit breaker) are added to
# the registry served by /metrics.
EXTRA_COLLECTORS: list[Collector] = [StreamCollector()]


def metrics_view(request) -> HttpResponse:
    registry = _registry()
    body = generate_latest(registry)
    scrape = CollectorRegistry()
    for collector in EXTRA_COLLECTORS:
        scrape.register(collector)
    body += generate_latest(scrape)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
