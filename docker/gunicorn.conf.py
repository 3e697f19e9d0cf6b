"""Gunicorn settings for `make run` and the web image, all from the environment.

PORT (8000), BIND_HOST (0.0.0.0), WEB_CONCURRENCY (2 processes), WEB_THREADS (4 per
process), WEB_TIMEOUT (30 s), WEB_GRACEFUL_TIMEOUT (WEATHER_REPLY_TIMEOUT_S + 5 s),
LOG_LEVEL (info), LOG_FORMAT (json under the production settings, else text),
GUNICORN_CONTROL_SOCKET (unset: no control socket), PROMETHEUS_MULTIPROC_DIR (unset:
a fresh directory under the temp dir, so /metrics sums the counters of every worker).
"""

import os
import tempfile

# Behind nginx (docker/nginx.conf.template), in compose and in `make run`: a gthread worker
# holds a thread per connection until its request is read, so slow clients must meet a
# buffering proxy first. Not to be published directly.
bind = [f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"]  # noqa: S104 (in a container, behind nginx)
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, because the weather request/reply view waits on a Redis stream: a sync
# worker would be busy doing nothing for the whole wait.
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# On SIGTERM, requests in flight get this long to finish before workers are killed: longer
# than the weather request/reply wait (WEATHER_REPLY_TIMEOUT_S), so a deploy drains those
# requests instead of cutting them. The compose file's stop_grace_period is longer still.
_weather_reply_timeout = float(os.environ.get("WEATHER_REPLY_TIMEOUT_S", "30"))
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", str(int(_weather_reply_timeout) + 5)))
keepalive = 5

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

# Heartbeat files on tmpfs: on a slow overlay filesystem gunicorn mistakes a blocked
# fsync for a hung worker and kills it.
if os.path.isdir("/dev/shm"):  # noqa: S108 (gunicorn's documented choice, not a temp file)
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# Trust X-Forwarded-* only from the proxy in front (set to "*" behind a private LB).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn 25+ opens a control socket at one fixed path per user, so a second instance
# on the machine clashes with the first; only open it where asked for.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# Structured logs: gunicorn's own and access log lines as JSON objects, like Django's.
_production = os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(".production")
if os.environ.get("LOG_FORMAT", "json" if _production else "text") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "commsplatform.logformat.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }

# prometheus_client's multiprocess mode: each worker writes its counters to files in this
# directory and /metrics (commsplatform.metrics) sums them. Set before the workers fork and
# import the app; a fresh directory per start, so no counts are left from the last run.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
