"""Settings read from the environment, with safe local defaults.

`make run` and the tests use these defaults (SQLite unless DATABASE_URL is set, the
embedded servers' URLs passed in by the supervisor or the test plugin). Production
imports this module and then refuses unsafe values (see production.py).
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

from commsplatform.devstack_endpoints import endpoints_path, endpoints_read

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

# While `make run` runs, var/devstack.json holds the addresses of the servers it started
# on free ports (commsplatform/devstack_endpoints.py); what the environment does not set is
# taken from there, so `manage.py` in a second terminal reaches them. The environment wins;
# the production settings and the tests turn the file off (DEVSTACK_ENDPOINTS_FILE="").
DEVSTACK_ENDPOINTS = endpoints_read(endpoints_path(BASE_DIR))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-insecure-key-never-used-in-production")
DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "drf_spectacular_sidecar",  # Swagger UI's JS/CSS served by us: /api/docs/ works offline
    "commsplatform",
    "workers",
    "users",
    "campaigns",
    "notifications",
    "orders",
    "inventory",
    "accounts",
    "weather",
    "telemetry",
]

MIDDLEWARE = [
    "commsplatform.metrics.RequestMetricsMiddleware",
    # Outermost but for the metrics: sees every error response, including Django's own.
    "commsplatform.middleware.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS) straight from gunicorn: no separate web server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused by django-axes into the lockout page (see "Login lockout" below).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "commsplatform.urls"
CSRF_FAILURE_VIEW = "commsplatform.errors.csrf_failure"  # JSON, like every other error

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "commsplatform" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "commsplatform.wsgi.application"

DATABASES = {
    "default": env.db(
        "DATABASE_URL", default=DEVSTACK_ENDPOINTS.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
    )
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and workers share the file: wait for the writer instead of failing at once.
    # WAL lets readers run beside the one writer, and synchronous=NORMAL syncs at
    # checkpoints instead of at every commit (a crash of the machine may lose the last
    # commits, never corrupt the file): the workers commit small transactions often.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters travel apart from the SQL instead of being quoted into it in Python: the
    # arrays of bulk inserts (Django sends them as UNNEST arrays) cost far less to send, and
    # psycopg prepares statements a connection runs often.
    # A DATABASE_URL may carry `?server_side_binding=…` as text; Django wants a bool.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _binding = _options.get("server_side_binding", env.bool("DATABASE_SERVER_SIDE_BINDING", default=True))
    _options["server_side_binding"] = str(_binding).lower() in ("true", "1", "yes", "on")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Login lockout (django-axes) -----------------------------------------------------------
# Every login (the admin's) goes through axes first: after LOGIN_FAILURE_LIMIT failed
# passwords from one client address, that address may not log in for LOGIN_LOCKOUT_MINUTES,
# not even with the right password; the admin shows a page saying so (429). Attempts are
# kept in the database (shared by every process, listed in the admin); `manage.py
# axes_reset` / `axes_reset_ip <ip>` lift a lockout. The client address is
# commsplatform.authentication.client_ip (NUM_PROXIES, below).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("LOGIN_LOCKOUT_ENABLED", default=True)
AXES_HANDLER = env("AXES_HANDLER", default="axes.handlers.database.AxesDatabaseHandler")
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "commsplatform.authentication.client_ip"
AXES_LOCKOUT_CALLABLE = "commsplatform.authentication.login_lockout_response"
# No banner at every start-up (every manage.py command would print it on stderr); lockouts
# are still logged as warnings.
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Without `collectstatic` (make run), serve straight from the apps' static folders.
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Redis ---------------------------------------------------------------------------
# REDIS_URL wins; otherwise the seed-000 variables (REDIS_HOST, REDIS_PORT, REDIS_DB,
# REDIS_PASS) are honoured; otherwise make run's Redis; otherwise a local server on the
# default port.
_SEED_REDIS_VARIABLES = ("REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASS")
if env("REDIS_URL", default=""):
    REDIS_URL = env("REDIS_URL")
elif "REDIS_URL" in DEVSTACK_ENDPOINTS and not any(env(name, default="") for name in _SEED_REDIS_VARIABLES):
    REDIS_URL = DEVSTACK_ENDPOINTS["REDIS_URL"]
else:
    _redis_password = env("REDIS_PASS", default="")
    REDIS_URL = "redis://{auth}{host}:{port}/{db}".format(
        auth=f":{_redis_password}@" if _redis_password else "",
        host=env("REDIS_HOST", default="127.0.0.1"),
        port=env.int("REDIS_PORT", default=6379),
        db=env.int("REDIS_DB", default=0),
    )
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=5.0)
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=2.0)
REDIS_RETRIES = env.int("REDIS_RETRIES", default=2)
# A `redis+cluster://host:port/` REDIS_URL (`rediss+cluster://` for TLS) names one seed
# node of a Redis Cluster. A failover takes about cluster-node-timeout plus a second: each
# command is retried this often (jittered backoff, capped at 1 s) meanwhile.
REDIS_CLUSTER_RETRIES = env.int("REDIS_CLUSTER_RETRIES", default=8)
REDIS_IS_CLUSTER = REDIS_URL.partition("://")[0] in ("redis+cluster", "rediss+cluster")
# A `rediss://` REDIS_URL speaks TLS; these apply to it (workers.connection and the cache).
# REDIS_SSL_CERT_REQS: required (default) | optional | none. CA bundle for a private CA,
# and a client certificate/key where the server asks for one (tls-auth-clients).
REDIS_SSL_CA_CERTS = env("REDIS_SSL_CA_CERTS", default="")
REDIS_SSL_CERT_REQS = env("REDIS_SSL_CERT_REQS", default="required")
REDIS_SSL_CERTFILE = env("REDIS_SSL_CERTFILE", default="")
REDIS_SSL_KEYFILE = env("REDIS_SSL_KEYFILE", default="")
REDIS_SSL_CHECK_HOSTNAME = env.bool("REDIS_SSL_CHECK_HOSTNAME", default=REDIS_SSL_CERT_REQS == "required")
# redis-py keyword arguments for a rediss:// URL (ignored for redis://).
REDIS_SSL_OPTIONS = {
    key: value
    for key, value in {
        "ssl_cert_reqs": REDIS_SSL_CERT_REQS,
        "ssl_ca_certs": REDIS_SSL_CA_CERTS,
        "ssl_certfile": REDIS_SSL_CERTFILE,
        "ssl_keyfile": REDIS_SSL_KEYFILE,
        "ssl_check_hostname": REDIS_SSL_CHECK_HOSTNAME,
    }.items()
    if value != ""
}

# The cache, the throttle counters and the failed-token counters live on a plain Redis:
# neither django-redis nor Django's own Redis cache speaks Redis Cluster (the packages
# that add it are unmaintained), and this data is small, short-lived and disposable. So
# with a cluster REDIS_URL, CACHE_REDIS_URL names a single Redis; by default it is REDIS_URL.
CACHE_REDIS_URL = env("CACHE_REDIS_URL", default="") or REDIS_URL
if CACHE_REDIS_URL.partition("://")[0] in ("redis+cluster", "rediss+cluster"):
    raise ImproperlyConfigured(
        "REDIS_URL names a Redis Cluster: set CACHE_REDIS_URL to a single Redis (redis://host:port/0) "
        "for the cache and the throttles"
    )
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": CACHE_REDIS_URL,
        "KEY_PREFIX": "cache",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            **({"CONNECTION_POOL_KWARGS": REDIS_SSL_OPTIONS} if CACHE_REDIS_URL.startswith("rediss://") else {}),
        },
    }
}
# A Redis outage must not turn every request into a 500 through the throttle cache.
DJANGO_REDIS_IGNORE_EXCEPTIONS = True
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# --- Streams and consumer groups (names from the seeds) --------------------------------
STREAMS = {
    "events": env("STREAM_EVENTS", default="NotificationStream"),
    "campaign": env("STREAM_CAMPAIGN", default="campaign"),
    "notification": env("STREAM_NOTIFICATION", default="notification"),
    "email": env("STREAM_EMAIL", default="email-notification"),
    "weather_requests": env("STREAM_WEATHER_REQUESTS", default="weather-requests"),
    "weather_responses": env("STREAM_WEATHER_RESPONSES", default="weather-responses"),
    "orders": env("STREAM_ORDERS", default="orders"),
    "inventory": env("STREAM_INVENTORY", default="inventory"),
    "accounts": env("STREAM_ACCOUNTS", default="accounts"),
    "battery_changes": env("STREAM_BATTERY_CHANGES", default="battery-changes"),
}
CONSUMER_GROUPS = {
    "events": env("GROUP_EVENTS", default="demo_consumer_group"),
}
# Defaults for every consumer; the registry may override per consumer.
WORKER_BLOCK_MS = env.int("WORKER_BLOCK_MS", default=1000)
WORKER_CLAIM_IDLE_MS = env.int("WORKER_CLAIM_IDLE_MS", default=30_000)
WORKER_MAX_DELIVERIES = env.int("WORKER_MAX_DELIVERIES", default=5)
WORKER_RETRY_BASE_S = env.float("WORKER_RETRY_BASE_S", default=0.1)
WORKER_RETRY_CAP_S = env.float("WORKER_RETRY_CAP_S", default=5.0)
WORKER_TRIM_INTERVAL_S = env.float("WORKER_TRIM_INTERVAL_S", default=30.0)
STREAM_MAXLEN_CAP = env.int("STREAM_MAXLEN_CAP", default=1_000_000)
OUTBOX_RELAY_GRACE_S = env.float("OUTBOX_RELAY_GRACE_S", default=5.0)
# Rows of sent events are deleted in batches by a background thread (workers.publish),
# gathered for this long, or deleted at once when this many are waiting.
OUTBOX_DELETE_INTERVAL_S = env.float("OUTBOX_DELETE_INTERVAL_S", default=0.05)
OUTBOX_DELETE_BATCH = env.int("OUTBOX_DELETE_BATCH", default=500)

# --- Orders saga -----------------------------------------------------------------------
# GET /report lists at most this many orders (newest first).
ORDERS_REPORT_MAX_ORDERS = env.int("ORDERS_REPORT_MAX_ORDERS", default=1000)
# Each saga consumer waits this long after a small batch, so that under load one
# transaction serves many orders (workers.registry.ConsumerSpec.linger_ms).
SAGA_LINGER_MS = env.int("SAGA_LINGER_MS", default=50)

# --- Communications: users, campaigns, notifications, email -----------------------------
CONSUMER_GROUPS.update(
    {
        "campaign": env("GROUP_CAMPAIGN", default="campaign"),
        "notification": env("GROUP_NOTIFICATION", default="notification"),
        "email": env("GROUP_EMAIL", default="email-notification"),
    }
)
USERS_GENERATE_COUNT = env.int("USERS_GENERATE_COUNT", default=100_000)  # GET /api/v1/user/generate
CAMPAIGN_FANOUT_CHUNK = env.int("CAMPAIGN_FANOUT_CHUNK", default=1000)  # recipients per `notification` entry
EMAIL_BATCH_SIZE = env.int("EMAIL_BATCH_SIZE", default=200)  # deliveries per `email-notification` entry
# The app that owns campaigns, as the delivery ledger sees it (notifications.campaign_hooks).
DELIVERY_CAMPAIGN_HOOKS = "campaigns.delivery_hooks"
# Rows claimed, sent and recorded together; after a kill -9 at most this many per sender
# thread can be sent twice.
EMAIL_SEND_CHUNK = env.int("EMAIL_SEND_CHUNK", default=50)
EMAIL_SENDER_CONCURRENCY = env.int("EMAIL_SENDER_CONCURRENCY", default=4)  # threads, one SMTP connection each
# One rate for the whole platform (every sender process and replica share it, in Redis);
# 0 = unlimited. EMAIL_RATE_LIMIT_KEY names the limit: one per relay, if several.
EMAIL_RATE_LIMIT_PER_S = env.float("EMAIL_RATE_LIMIT_PER_S", default=0.0)
EMAIL_RATE_BURST = env.int("EMAIL_RATE_BURST", default=0)  # messages at once; 0 = one second's worth
EMAIL_RATE_LIMIT_KEY = env("EMAIL_RATE_LIMIT_KEY", default="smtp")
EMAIL_MAX_SEND_ERRORS = env.int("EMAIL_MAX_SEND_ERRORS", default=0)  # in a row, then the campaign pauses; 0 = never
EMAIL_TEST_SEND_RATE = env("EMAIL_TEST_SEND_RATE", default="10/minute")  # send-test, per user
CAMPAIGN_SCHEDULER_POLL_S = env.float("CAMPAIGN_SCHEDULER_POLL_S", default=5.0)  # the campaign-scheduler loop
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=10)  # 4xx replies before `failed`
EMAIL_RETRY_BASE_S = env.float("EMAIL_RETRY_BASE_S", default=30.0)  # backoff after a 4xx, doubling
EMAIL_RETRY_CAP_S = env.float("EMAIL_RETRY_CAP_S", default=900.0)
EMAIL_OUTAGE_PAUSE_BASE_S = env.float("EMAIL_OUTAGE_PAUSE_BASE_S", default=1.0)  # server unreachable
EMAIL_OUTAGE_PAUSE_CAP_S = env.float("EMAIL_OUTAGE_PAUSE_CAP_S", default=30.0)
EMAIL_SENDING_LEASE_S = env.float("EMAIL_SENDING_LEASE_S", default=120.0)  # then a claimed row is re-sent
EMAIL_RETRY_POLL_S = env.float("EMAIL_RETRY_POLL_S", default=2.0)  # the email-retry loop
EMAIL_MESSAGE_ID_DOMAIN = env("EMAIL_MESSAGE_ID_DOMAIN", default="commsplatform.local")

# --- Kafka -----------------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env(
    "KAFKA_BOOTSTRAP_SERVERS",
    default=env("KAFKA_BROKER", default=DEVSTACK_ENDPOINTS.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")),
)
KAFKA_TOPIC = env("KAFKA_TOPIC", default="battery-telemetry")
KAFKA_GROUP = env("KAFKA_GROUP", default="ems-redis-backend")
# Ingest tuning (telemetry app / workers.kafka): records per batch, how long one poll
# waits, the group session (short, so a dead consumer's partitions move quickly), and
# extra librdkafka settings as JSON (security.protocol, sasl.*, ...).
KAFKA_INGEST_BATCH_SIZE = env.int("KAFKA_INGEST_BATCH_SIZE", default=2000)
KAFKA_INGEST_POLL_TIMEOUT_S = env.float("KAFKA_INGEST_POLL_TIMEOUT_S", default=0.5)
KAFKA_SESSION_TIMEOUT_MS = env.int("KAFKA_SESSION_TIMEOUT_MS", default=6000)
KAFKA_CONSUMER_OPTIONS = env.json("KAFKA_CONSUMER_OPTIONS", default={})

# --- Email ----------------------------------------------------------------------------
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# make run's SMTP sink only when EMAIL_HOST is unset (its port belongs to its host).
_devstack_smtp = {} if env("EMAIL_HOST", default="") else DEVSTACK_ENDPOINTS
EMAIL_HOST = env("EMAIL_HOST", default=_devstack_smtp.get("EMAIL_HOST", "127.0.0.1"))
EMAIL_PORT = env.int("EMAIL_PORT", default=int(_devstack_smtp.get("EMAIL_PORT", 2500)))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="test@test.com")

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "commsplatform.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # orjson, refusing bodies nested deeper than API_JSON_MAX_DEPTH (commsplatform/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["commsplatform.parsers.JSONParser"],
    # JSON only: Swagger UI (/api/docs/) is the browsable API, and one renderer makes
    # content negotiation trivial on the hot paths.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "commsplatform.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "commsplatform.schema.AutoSchema",
    "EXCEPTION_HANDLER": "commsplatform.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "commsplatform.throttling.AnonRateThrottle",
        "commsplatform.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", default="60/minute"),
        "user": env("THROTTLE_USER", default="100000/minute"),
        "campaign-send-test": EMAIL_TEST_SEND_RATE,
        # Per client address: mail providers send one-click unsubscribes and bounces from
        # a few addresses, so these are higher than `anon`.
        "unsubscribe": env("THROTTLE_UNSUBSCRIBE", default="600/minute"),
        "bounce_webhook": env("THROTTLE_BOUNCE_WEBHOOK", default="6000/minute"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # The client address the throttles, the failed-token counter and the login lockout
    # count by. 0: REMOTE_ADDR, X-Forwarded-For ignored
    # (gunicorn reached directly). 1 behind nginx (compose, `make run`): the last
    # X-Forwarded-For entry, the peer address nginx appends; entries a client wrote
    # itself come before it and are never read. DRF's default (None) would take the
    # whole header as the client wrote it.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}

# The largest request body read (Django's default, made explicit): larger bodies are a 413
# (commsplatform.middleware), and nginx's client_max_body_size is the same value
# (docker/nginx.conf.template), so the proxy refuses exactly the bodies Django would.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int(
    "DATA_UPLOAD_MAX_MEMORY_SIZE", default=global_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
)
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=64)  # deeper request bodies are a 400

API_TOKEN_CACHE_S = env.float("API_TOKEN_CACHE_S", default=30.0)
# Failed token checks per client address (commsplatform.authentication): this many within
# the window, and the client's requests with an unverified token get 429 until it ends.
API_TOKEN_FAILURE_LIMIT = env.int("API_TOKEN_FAILURE_LIMIT", default=20)
API_TOKEN_FAILURE_WINDOW_S = env.int("API_TOKEN_FAILURE_WINDOW_S", default=300)
# The web server that the traffic tools (simulate_events, loadtest weather) call.
API_URL = env("API_URL", default=DEVSTACK_ENDPOINTS.get("API_URL", "http://127.0.0.1:8000"))

# --- Consent and bounces (notifications.unsubscribe, notifications.bounces) -------------
# The public address of this site, for the unsubscribe links in campaign mail.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default=API_URL)
# An address that unsubscribes by mail, added to List-Unsubscribe when set (its mailbox is
# not read by this platform: set it only where something acts on it).
UNSUBSCRIBE_MAILTO = env("UNSUBSCRIBE_MAILTO", default="")
# Shared secret of POST /api/v1/bounces/ (HMAC-SHA256 of the body in X-Signature); unset,
# the webhook answers 503 and accepts nothing.
BOUNCE_WEBHOOK_SECRET = env("BOUNCE_WEBHOOK_SECRET", default="")

SPECTACULAR_SETTINGS = {
    "TITLE": "commsplatform API",
    "DESCRIPTION": "Events, communications, orders, weather and telemetry on Redis Streams.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar's static files (WhiteNoise serves them), not a
    # CDN: the docs page needs no internet. No validator badge (it calls validator.swagger.io).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

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

# --- Weather request/reply --------------------------------------------------------------
CONSUMER_GROUPS["weather"] = env("GROUP_WEATHER", default="processing-group")
WEATHER_REPLY_TIMEOUT_S = env.float("WEATHER_REPLY_TIMEOUT_S", default=30.0)  # then 504
WEATHER_TERMINALS = env.int("WEATHER_TERMINALS", default=4)  # concurrent terminals per worker process
# Requests one terminal takes at a time; their replies leave in one round trip. 1 suits a
# slow provider (a batch is answered in sequence); 32 with 1 terminal suits the built-in one.
WEATHER_BATCH_SIZE = env.int("WEATHER_BATCH_SIZE", default=1)
WEATHER_PROVIDER = env("WEATHER_PROVIDER", default="weather.providers.BuiltinForecastProvider")
WEATHER_PROCESSING_DELAY_MS = env.int("WEATHER_PROCESSING_DELAY_MS", default=0)  # simulated slow upstream
WEATHER_RESPONSES_MAXLEN = env.int("WEATHER_RESPONSES_MAXLEN", default=10_000)  # approximate; no group reads it
WEATHER_LISTENER_BLOCK_MS = env.int("WEATHER_LISTENER_BLOCK_MS", default=2000)
WEATHER_REDIS_RETRIES = env.int("WEATHER_REDIS_RETRIES", default=3)  # retries after the first try
WEATHER_RETRY_BASE_S = env.float("WEATHER_RETRY_BASE_S", default=0.05)  # backoff 0.05, 0.1, 0.2 s
WEATHER_RETRY_CAP_S = env.float("WEATHER_RETRY_CAP_S", default=1.0)
WEATHER_BREAKER_FAIL_MAX = env.int("WEATHER_BREAKER_FAIL_MAX", default=5)  # consecutive failures to open
WEATHER_BREAKER_RESET_S = env.float("WEATHER_BREAKER_RESET_S", default=30.0)  # open this long, then a trial

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
