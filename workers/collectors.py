"""Prometheus collectors for the failures that used to be silent.

- `kafka_consumer_lag{topic,partition,group}`: the ingest's committed offset vs the
  high watermark, read from the broker by the web process (workers.kafka.KafkaLagMonitor)
  and not from Redis: when Redis refuses writes, counters the ingest keeps there freeze,
  and that is exactly when the lag must show. `kafka_consumer_stalled` is 1 for a
  partition that lagged without its committed offset moving for WORKER_STALL_S (as seen
  by this process), `kafka_lag_up` 0 when the broker did not answer in time.
- `redis_data_lost_total` (kept in the database, which survives the loss),
  `redis_data_loss_alarm` (1 while the alarm stands: REDIS_LOSS_ALARM_S after a loss, or a
  loss no worker has recorded yet) and `redis_data_last_loss_timestamp_seconds`.
"""

import logging
import threading

from django.conf import settings
from django.db import DatabaseError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .connection import UNAVAILABLE_ERRORS, get_redis
from .kafka import KafkaLagMonitor
from .redis_epoch import epoch_status

logger = logging.getLogger(__name__)

_monitor: KafkaLagMonitor | None = None
_monitor_key: tuple = ()
_monitor_lock = threading.Lock()


def kafka_lag_monitor() -> KafkaLagMonitor:
    """This process's monitor of the ingest's group (rebuilt when its settings change)."""
    global _monitor, _monitor_key
    key = (
        settings.KAFKA_BOOTSTRAP_SERVERS,
        settings.KAFKA_GROUP,
        settings.KAFKA_TOPIC,
        settings.KAFKA_LAG_TIMEOUT_S,
        settings.KAFKA_LAG_CACHE_S,
        settings.WORKER_STALL_S,
    )
    with _monitor_lock:
        if _monitor is None or key != _monitor_key:
            if _monitor is not None:
                _monitor.close()
            _monitor = KafkaLagMonitor(
                bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
                group=settings.KAFKA_GROUP,
                topic=settings.KAFKA_TOPIC,
                timeout_s=settings.KAFKA_LAG_TIMEOUT_S,
                cache_s=settings.KAFKA_LAG_CACHE_S,
                stall_s=settings.WORKER_STALL_S,
                config=settings.KAFKA_CONSUMER_OPTIONS,
            )
            _monitor_key = key
        return _monitor


class KafkaLagCollector(Collector):
    def collect(self):
        labels = ["topic", "partition", "group"]
        lag = GaugeMetricFamily("kafka_consumer_lag", "Records not yet committed by the group", labels=labels)
        stalled = GaugeMetricFamily(
            "kafka_consumer_stalled", "1: lagging with no committed progress for WORKER_STALL_S", labels=labels
        )
        up = GaugeMetricFamily("kafka_lag_up", "1 when the broker answered the lag query")
        if not settings.KAFKA_LAG_METRICS:
            return
        reading = kafka_lag_monitor().read()
        if not reading.ok:
            logger.warning("metrics: Kafka lag unavailable: %s", reading.error)
        for item in reading.partitions:
            key = [item.topic, str(item.partition), item.group]
            lag.add_metric(key, item.lag)
            stalled.add_metric(key, 1 if item.partition in reading.stalled else 0)
        up.add_metric([], 1 if reading.ok else 0)
        yield from (lag, stalled, up)


class RedisLossCollector(Collector):
    def collect(self):
        lost_total = CounterMetricFamily("redis_data_lost", "Times Redis was found to have lost its data")
        alarm = GaugeMetricFamily(
            "redis_data_loss_alarm", "1 while the Redis data-loss alarm stands (REDIS_LOSS_ALARM_S)"
        )
        last = GaugeMetricFamily("redis_data_last_loss_timestamp_seconds", "When Redis last lost its data")
        try:
            try:
                status = epoch_status(get_redis())
            except UNAVAILABLE_ERRORS:
                status = epoch_status(None)
        except DatabaseError as exc:
            logger.warning("metrics: Redis epoch unavailable: %s", exc)
            return
        lost_total.add_metric([], status.losses)
        alarm.add_metric([], 1 if status.alarm else 0)
        yield lost_total
        yield alarm
        if status.last_loss_at is not None:
            last.add_metric([], status.last_loss_at.timestamp())
            yield last
