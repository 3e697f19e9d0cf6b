"""The REST API: DRF, throttles, request limits, tokens, the OpenAPI schema."""

from django.conf import global_settings

from .kafka import *  # noqa: F403

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
