"""Weather figures for /metrics, read at scrape time.

`ingress_pending_requests` is a live gauge in weather.replies (summed over gunicorn
workers in multiprocess mode). The breaker is per process, so `redis_circuit_state` is
that of the process that answered the scrape (0 closed, 1 open, 2 half-open). Terminal
and queue figures come from Redis and are the same from any replica.
"""

import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from workers.connection import UNAVAILABLE_ERRORS, get_redis

from .resilience import breaker_state
from .selectors import weather_queue_stats
from .services import EXPIRED_KEY

logger = logging.getLogger(__name__)


class WeatherCollector(Collector):
    def collect(self):
        state = GaugeMetricFamily("redis_circuit_state", "Redis circuit breaker: 0 closed, 1 open, 2 half-open")
        state.add_metric([], breaker_state()["code"])
        yield state
        active = GaugeMetricFamily("weather_active_terminals", "Terminals (consumers) processing a request now")
        terminals = GaugeMetricFamily("weather_terminals", "Terminals (consumers) known to processing-group")
        depth = GaugeMetricFamily("weather_queue_depth", "Weather requests not answered yet (waiting + in progress)")
        waiting = GaugeMetricFamily("weather_queue_waiting", "Weather requests not yet taken by a terminal")
        expired = CounterMetricFamily("weather_requests_expired", "Requests skipped: their caller had given up")
        try:
            stats = weather_queue_stats()
            expired_count = int(get_redis().hget(EXPIRED_KEY, "expired") or 0)
        except UNAVAILABLE_ERRORS as exc:
            logger.warning("weather metrics: Redis unavailable: %s", exc)
            return
        active.add_metric([], stats.active_terminals)
        terminals.add_metric([], stats.terminals)
        depth.add_metric([], stats.depth)
        waiting.add_metric([], stats.waiting)
        expired.add_metric([], expired_count)
        yield from (active, terminals, depth, waiting, expired)
