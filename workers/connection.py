"""Redis clients, one connection pool per URL, shared by every thread of a process.

`REDIS_URL` names a single server (`redis://`, `rediss://`) or, with the scheme
`redis+cluster://host:port/` (`rediss+cluster://` for TLS), one seed node of a Redis
Cluster: get_redis() then returns a `redis.cluster.RedisCluster`, which finds the other
nodes, routes each command to its slot's master, and follows MOVED/ASK and failovers.
"""

import threading
from typing import cast

import redis
from django.conf import settings
from django.core.signals import setting_changed
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.typing import EncodableT, FieldT

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()

# Errors that mean "Redis is not reachable right now" (as opposed to a bad command).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    ConnectionError,
    OSError,
    # A cluster whose slot has no master yet (a failover in progress), or that keeps
    # answering MOVED/TRYAGAIN until the client's retries run out.
    redis.exceptions.ClusterError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.TryAgainError,
)

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    """Whether `url` names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`)."""
    return url.partition("://")[0] in CLUSTER_SCHEMES


def is_cluster(client: object) -> bool:
    """Whether `client` (from get_redis) talks to a Redis Cluster."""
    return isinstance(client, RedisCluster)


# Errors that mean "Redis answers but refuses writes": out of memory under `noeviction`, or
# a read-only replica. PING still passes; every XADD fails.
REFUSED_WRITE_ERRORS: tuple[type[Exception], ...] = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)


def refused_write_reason(exc: Exception) -> str:
    """`Redis refuses writes: OOM …` (redis-py drops the error code from the message)."""
    code = "OOM" if isinstance(exc, redis.exceptions.OutOfMemoryError) else "READONLY"
    return f"Redis refuses writes: {code} {exc}"


# redis-py types stream replies for every client (bytes or str, RESP2 or RESP3 shapes). Ours
# decode responses and speak RESP2, so these are the shapes get_redis() clients return:
StreamEntry = tuple[str, dict[str, str]]  # one XRANGE / XREVRANGE / XREAD entry: (id, fields)
PendingStreamEntry = tuple[str, dict[str, str] | None]  # XREADGROUP of pending ids: fields None if deleted
XReadReply = list[tuple[str, list[StreamEntry]]]  # XREAD: [[stream, entries], ...] (2-item lists)
XReadGroupReply = list[tuple[str, list[PendingStreamEntry]]]
# XADD takes `dict[FieldT, EncodableT]`; dict is invariant, so our dict[str, str] fields are cast to it.
XAddFields = dict[FieldT, EncodableT]


def get_redis(url: str | None = None) -> redis.Redis:
    """Return the process-wide client for `url` (default: settings.REDIS_URL).

    Strings are decoded. Each command is retried a few times with jittered backoff
    (settings.REDIS_RETRIES) so a Redis restart costs a short delay, not an error.
    A `rediss://` URL connects over TLS with settings.REDIS_SSL_OPTIONS (CA, cert checks).
    """
    url = url or settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None and is_cluster_url(url):
                client = _cluster_client(url)
                _clients[url] = client
            elif client is None:
                client = redis.Redis.from_url(
                    url,
                    decode_responses=True,
                    socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                    socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
                    health_check_interval=15,
                    retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), settings.REDIS_RETRIES),
                    retry_on_error=[redis.ConnectionError, redis.TimeoutError, ConnectionResetError],
                    **(getattr(settings, "REDIS_SSL_OPTIONS", {}) if url.startswith("rediss://") else {}),
                )
                _clients[url] = client
    return client


def _cluster_client(url: str) -> redis.Redis:
    """A RedisCluster for a `redis+cluster://` seed-node URL.

    A failover (a master dies, its replica is promoted after cluster-node-timeout) shows
    up as connection errors, then MOVED or CLUSTERDOWN: each command is retried with
    jittered backoff up to settings.REDIS_CLUSTER_RETRIES times, re-reading the slot map
    in between, so a failover of a few seconds costs a delay; a longer one raises one of
    UNAVAILABLE_ERRORS and the caller's own loop backs off.
    """
    scheme, _, rest = url.partition("://")
    plain_url = f"{CLUSTER_SCHEMES[scheme]}://{rest}"
    client = RedisCluster.from_url(
        plain_url,
        decode_responses=True,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
        health_check_interval=15,
        retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=1.0), settings.REDIS_CLUSTER_RETRIES),
        **(getattr(settings, "REDIS_SSL_OPTIONS", {}) if scheme == "rediss+cluster" else {}),
    )
    # The command API is Redis's; the stub types RedisCluster apart (no shared base class).
    return cast(redis.Redis, client)


def reset_clients() -> None:
    """Drop every cached client (tests that point settings.REDIS_URL elsewhere)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting == "REDIS_URL":
        reset_clients()


setting_changed.connect(_on_setting_changed)


class SentPipeline:
    """A non-transactional pipeline written to Redis now, its replies read later (`result()`).

    `pipe.execute()` writes and then waits; this splits the two so the caller can do other
    work (the Kafka ingest decodes its next batch) while Redis executes, without a thread:
    a thread that writes and reads a big pipeline needs the GIL back after every socket
    chunk, and gets it only when the busy thread reaches its switch interval (5 ms), so
    Redis sat idle for most of that. Everything is packed before the write, in the
    caller's thread. The pipeline's scripts are loaded by a `SCRIPT LOAD` in front of
    the commands (idempotent, and Redis only hashes a script it already has), so an
    `EVALSHA` never meets NOSCRIPT after a restart; that replaces the round trip of
    `SCRIPT EXISTS` that `execute()` makes.

    `result()` reads every reply (so the connection stays in sync), releases the
    connection and raises the first error reply, like `execute()`; a connection error
    closes the connection and propagates. Single Redis only (not a cluster pipeline).
    """

    _pool: redis.ConnectionPool
    _replies: int
    _connection: redis.Connection | None

    def __init__(self, pipe: redis.client.Pipeline):
        # `transaction` is an attribute of a pipeline (the stubs see the client's method).
        if getattr(pipe, "transaction", False) is True:
            raise ValueError("SentPipeline sends non-transactional pipelines only")
        commands: list[tuple[EncodableT, ...]] = [("SCRIPT", "LOAD", script.script) for script in pipe.scripts]
        commands += [args for args, _options in pipe.command_stack]
        self._pool = pipe.connection_pool
        self._replies = len(commands)
        self._connection = None
        if not commands:
            return
        connection = self._pool.get_connection()
        try:
            connection.send_packed_command(connection.pack_commands(commands))
        except BaseException:
            connection.disconnect()
            self._pool.release(connection)
            raise
        self._connection = connection

    def result(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        first_error: redis.ResponseError | None = None
        try:
            for _ in range(self._replies):
                try:
                    connection.read_response()
                except redis.ResponseError as exc:
                    first_error = first_error or exc
        except BaseException:
            connection.disconnect()
            raise
        finally:
            self._pool.release(connection)
        if first_error is not None:
            raise first_error
