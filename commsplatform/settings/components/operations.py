"""Health checks, logging, worker heartbeats, stalls, lag, lost Redis data and the
reconciler."""

from typing import Any

from .weather import *  # noqa: F403

# Health checks that /healthz and /readyz run (dotted paths of callables returning a
# commsplatform.health.CheckResult), every one listed here.
LIVENESS_CHECKS = ["weather.health.check_weather_circuit"]
READINESS_CHECKS = [
    "commsplatform.health.check_database",
    "commsplatform.health.check_redis",
    "commsplatform.health.check_redis_data",
]

# Upper-cased: gunicorn's config takes `warning`, Python's logging only `WARNING`.
LOG_LEVEL = env("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env("LOG_FORMAT", default="text")  # "json" in production
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {
            "()": "commsplatform.logformat.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "commsplatform.logformat.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Worker heartbeat --------------------------------------------------------------------
# `runworker` touches <dir>/<consumer>.heartbeat while all its threads are alive;
# `manage.py worker_health <consumer>` fails when the file is older than the max age.
# Empty: no heartbeat (the container sets a directory of its own).
WORKER_HEARTBEAT_DIR = env("WORKER_HEARTBEAT_DIR", default="")
WORKER_HEARTBEAT_MAX_AGE_S = env.float("WORKER_HEARTBEAT_MAX_AGE_S", default=60.0)

# --- Stalls, lag, lost Redis data, the reconciler -----------------------------------------
# A consumer that has had work waiting without making progress for this long is stalled:
# it logs so at ERROR and `worker_health` fails (the Kafka ingest while Redis refuses its
# writes); /metrics reports a Kafka partition lagging without commits for as long.
WORKER_STALL_S = env.float("WORKER_STALL_S", default=120.0)
# A stream consumer's handler running longer than this (per consumer: the registry's
# handler_timeout_s) is stuck: logged at ERROR, counted, and `worker_health` fails so the
# supervisor restarts the worker; its entries stay pending for another consumer to reclaim.
WORKER_HANDLER_TIMEOUT_S = env.float("WORKER_HANDLER_TIMEOUT_S", default=300.0)
# email-sender's limit: an entry is EMAIL_BATCH_SIZE deliveries sent in chunks, each SMTP
# command bounded by EMAIL_TIMEOUT, so a slow server legitimately takes minutes.
EMAIL_SENDER_HANDLER_TIMEOUT_S = env.float("EMAIL_SENDER_HANDLER_TIMEOUT_S", default=900.0)
# Paused entries (workers.steering): each loop reads its pause flag at most this often.
WORKER_PAUSE_CHECK_S = env.float("WORKER_PAUSE_CHECK_S", default=1.0)
# Each worker process reports its entries in Redis (workers.heartbeat.replicas_key) every
# second; a report older than this is a replica that is gone.
WORKER_REPLICA_TTL_S = env.float("WORKER_REPLICA_TTL_S", default=10.0)
# /metrics reads the ingest's lag from the broker: each request bounded by the timeout,
# the answer (or failure) cached this long per web process. Off: no Kafka in this setup.
KAFKA_LAG_METRICS = env.bool("KAFKA_LAG_METRICS", default=True)
KAFKA_LAG_TIMEOUT_S = env.float("KAFKA_LAG_TIMEOUT_S", default=1.0)
KAFKA_LAG_CACHE_S = env.float("KAFKA_LAG_CACHE_S", default=10.0)
# After Redis lost its data, /readyz and the admin say so (degraded) for this long.
REDIS_LOSS_ALARM_S = env.float("REDIS_LOSS_ALARM_S", default=3600.0)
# The reconciler (`runworker reconciler`): every RECONCILE_INTERVAL_S it re-drives orders
# and campaigns that sat in a non-final state for RECONCILE_AFTER_S (each at most once per
# RECONCILE_AFTER_S), from the database, idempotently.
RECONCILE_AFTER_S = env.float("RECONCILE_AFTER_S", default=300.0)
RECONCILE_INTERVAL_S = env.float("RECONCILE_INTERVAL_S", default=30.0)
