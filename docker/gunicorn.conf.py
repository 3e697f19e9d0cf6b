"""Gunicorn settings for `make run` and the web image, all from the environment.

PORT (8000), BIND_HOST (0.0.0.0), WEB_CONCURRENCY (2 processes), WEB_THREADS (4 per
process), WEB_TIMEOUT (30 s), WEB_GRACEFUL_TIMEOUT (20 s), LOG_LEVEL (info),
GUNICORN_CONTROL_SOCKET (unset: no control socket).
"""

import os

bind = [f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, because the weather request/reply view waits on a Redis stream: a sync
# worker would be busy doing nothing for the whole wait.
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# On SIGTERM, requests in flight get this long to finish before workers are killed.
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "20"))
keepalive = 5

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

# Heartbeat files on tmpfs: on a slow overlay filesystem gunicorn mistakes a blocked
# fsync for a hung worker and kills it.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# Trust X-Forwarded-* only from the proxy in front (set to "*" behind a private LB).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn 25+ opens a control socket at one fixed path per user, so a second instance
# on the machine clashes with the first; only open it where asked for.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
