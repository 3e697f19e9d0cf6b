"""Django itself: the environment, secrets, apps, middleware, templates, the database,
language and static files."""

from pathlib import Path

import environ

from commsplatform.devstack_endpoints import endpoints_path, endpoints_read

BASE_DIR = Path(__file__).resolve().parents[3]  # the checkout (commsplatform/settings/components/)

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
    # arrays of bulk inserts (Django sends them as UNNEST arrays) cost far less to send.
    # A DATABASE_URL may carry `?server_side_binding=…` as text; Django wants a bool.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _binding = _options.get("server_side_binding", env.bool("DATABASE_SERVER_SIDE_BINDING", default=True))
    _options["server_side_binding"] = str(_binding).lower() in ("true", "1", "yes", "on")
    # Django leaves psycopg's prepare_threshold at None (never prepare), and so do we by
    # default. A number N prepares a statement on its Nth run on a connection, which spares
    # the saga's and the outbox's parsing and planning (PostgreSQL CPU per order 1.46 ->
    # 1.16 ms), but a prepared statement soon runs a generic plan chosen while a table was
    # small: a 100,000-mail campaign took 42 s instead of 23 s (PostgreSQL 0.29 instead of
    # 0.08 ms per mail, the ledger's claim queries), measured with bench.campaign_100k.
    _threshold = str(_options.get("prepare_threshold", env("DATABASE_PREPARE_THRESHOLD", default="")))
    _options["prepare_threshold"] = int(_threshold) if _threshold.strip() else None
    # Django's backend, able to send a statement in the COMMIT's round trip (the outbox
    # INSERT of publish_on_commit): commsplatform/db/postgresql/base.py.
    DATABASES["default"]["ENGINE"] = "commsplatform.db.postgresql"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
