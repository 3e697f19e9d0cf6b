"""Settings read from the environment, with safe local defaults.

`make run` and the tests use these defaults (SQLite unless DATABASE_URL is set, the
embedded servers' URLs passed in by the supervisor or the test plugin). Production
imports this module and then refuses unsafe values (see production.py).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

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
    "commsplatform",
    "workers",
    "users",
    "campaigns",
    "notifications",
    "orders",
    "inventory",
    "accounts",
    "weather",
]

MIDDLEWARE = [
    "commsplatform.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "commsplatform.urls"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and workers share the file: wait for the writer instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

# --- Redis ---------------------------------------------------------------------------
# REDIS_URL wins; otherwise the seed-000 variables (REDIS_HOST, REDIS_PORT, REDIS_DB,
# REDIS_PASS) are honoured; otherwise a local server on the default port.
if env("REDIS_URL", default=""):
    REDIS_URL = env("REDIS_URL")
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

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cache",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
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

# --- Kafka (seed 000) -----------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", default=env("KAFKA_BROKER", default="127.0.0.1:9092"))
KAFKA_TOPIC = env("KAFKA_TOPIC", default="battery-telemetry")
KAFKA_GROUP = env("KAFKA_GROUP", default="ems-redis-backend")

# --- Email ----------------------------------------------------------------------------
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=2500)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="test@test.com")

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "commsplatform.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "commsplatform.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", default="60/minute"),
        "user": env("THROTTLE_USER", default="100000/minute"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "commsplatform API",
    "DESCRIPTION": "Events, communications, orders, weather and telemetry on Redis Streams.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# Health checks that /healthz and /readyz run (dotted paths of callables returning a
# commsplatform.health.CheckResult). Apps append theirs.
LIVENESS_CHECKS: list[str] = []
READINESS_CHECKS = ["commsplatform.health.check_database", "commsplatform.health.check_redis"]

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="text")  # "json" in production
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "commsplatform.logformat.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Weather request/reply (seed 003) ---------------------------------------------------
CONSUMER_GROUPS["weather"] = env("GROUP_WEATHER", default="processing-group")
WEATHER_REPLY_TIMEOUT_S = env.float("WEATHER_REPLY_TIMEOUT_S", default=30.0)  # then 504
WEATHER_TERMINALS = env.int("WEATHER_TERMINALS", default=4)  # concurrent terminals per worker process
WEATHER_BATCH_SIZE = env.int("WEATHER_BATCH_SIZE", default=1)  # requests one terminal takes at a time
WEATHER_PROVIDER = env("WEATHER_PROVIDER", default="weather.providers.BuiltinForecastProvider")
WEATHER_PROCESSING_DELAY_MS = env.int("WEATHER_PROCESSING_DELAY_MS", default=0)  # simulated slow upstream
WEATHER_RESPONSES_MAXLEN = env.int("WEATHER_RESPONSES_MAXLEN", default=10_000)  # approximate; no group reads it
WEATHER_LISTENER_BLOCK_MS = env.int("WEATHER_LISTENER_BLOCK_MS", default=2000)
WEATHER_REDIS_RETRIES = env.int("WEATHER_REDIS_RETRIES", default=3)  # retries after the first try
WEATHER_RETRY_BASE_S = env.float("WEATHER_RETRY_BASE_S", default=0.05)  # backoff 0.05, 0.1, 0.2 s
WEATHER_RETRY_CAP_S = env.float("WEATHER_RETRY_CAP_S", default=1.0)
WEATHER_BREAKER_FAIL_MAX = env.int("WEATHER_BREAKER_FAIL_MAX", default=5)  # consecutive failures to open
WEATHER_BREAKER_RESET_S = env.float("WEATHER_BREAKER_RESET_S", default=30.0)  # open this long, then a trial
LIVENESS_CHECKS += ["weather.health.check_weather_circuit"]
