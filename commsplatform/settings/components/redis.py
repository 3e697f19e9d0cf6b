"""Redis: the connection (REDIS_URL, seed 000's variables, TLS) and the cache."""

from django.core.exceptions import ImproperlyConfigured

from .auth import *  # noqa: F403

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
