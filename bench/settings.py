"""Settings for benchmark runs: the project's, plus bench-only baseline routes."""

from commsplatform.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
DEBUG = False
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = []  # noqa: F405  (we measure the pipeline, not the limiter)
