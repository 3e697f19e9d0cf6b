"""Production settings: everything from the environment, no default secrets.

Start-up fails (ImproperlyConfigured) without DJANGO_SECRET_KEY, with DJANGO_DEBUG on,
without DJANGO_ALLOWED_HOSTS or without DATABASE_URL. When VAULT_ADDR and VAULT_TOKEN
are set, the secret in Vault fills the variables the environment leaves unset (see
vault.py) before anything below reads them. Served behind a TLS-terminating proxy that
sets X-Forwarded-Proto; static files are served by WhiteNoise from STATIC_ROOT.
"""

import os

from commsplatform.devstack_endpoints import ENV_VAR as _DEVSTACK_ENDPOINTS_FILE
from commsplatform.settings.vault import load_vault_into_environ

load_vault_into_environ()
# `make run`'s endpoints file (var/devstack.json) describes a developer's machine: never here.
os.environ[_DEVSTACK_ENDPOINTS_FILE] = ""

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from .base import *  # noqa: E402
from .base import env  # noqa: E402

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY or SECRET_KEY.startswith("local-insecure") or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production (at least 32 random characters).")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
ALLOWED_HOSTS = [host for host in env.list("DJANGO_ALLOWED_HOSTS", default=[]) if host]
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must name the host(s) this site is served on.")
if not env("DATABASE_URL", default=""):
    raise ImproperlyConfigured("DATABASE_URL must be set in production (the SQLite default is for `make run`).")

# Behind nginx (docker/nginx.conf.template), the only way to reach gunicorn: web publishes
# no port. nginx overwrites X-Forwarded-Proto with the scheme it was reached by, and
# appends the peer address to X-Forwarded-For (read with NUM_PROXIES, in base).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Probes and the scraper talk to the web container directly, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Static files (the admin, Swagger UI) collected into the image and served by WhiteNoise.
STATIC_ROOT = env("DJANGO_STATIC_ROOT", default=str(STATIC_ROOT))
# (WhiteNoiseMiddleware is in base's MIDDLEWARE; here it serves hashed, compressed files.)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_MANIFEST_STRICT = False  # a file missing from the manifest is served unhashed, not a 500

# One JSON object per log line (commsplatform.logformat.JsonFormatter); LOG_FORMAT=text to read by eye.
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT
