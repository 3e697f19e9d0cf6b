"""A throwaway Redis Cluster: three masters and three replicas of the system `redis-server`.

Each node is a `RedisServer` started in cluster mode on a free port (and a free cluster-bus
port); `redis-cli --cluster create … --cluster-replicas 1` then splits the 16384 slots
over the masters and gives each one a replica. A short node timeout makes a failover
after a master is killed take about two seconds. Nothing is persisted.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from ._process import ServerStartError, free_port
from .redis_server import RedisServer, redis_server_binary

CLUSTER_SCHEME = "redis+cluster"


class ClusterNode(RedisServer):
    """One cluster-enabled redis-server."""

    name = "redis-cluster-node"

    def __init__(self, *, node_timeout_ms: int, binary: str | None = None) -> None:
        super().__init__(binary=binary)
        self.node_timeout_ms = node_timeout_ms
        self.bus_port = free_port(self.host)

    def command(self) -> list[str]:
        return super().command() + [
            "--cluster-enabled", "yes",
            "--cluster-port", str(self.bus_port),
            "--cluster-config-file", str(self.data_dir / "nodes.conf"),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # The slots of a failed master are unavailable until its replica takes over;
            # the other masters keep serving theirs.
            "--cluster-require-full-coverage", "no",
            # A replica syncs at once (not after the default 5 s): one that has not synced
            # yet cannot be promoted.
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip

    def role(self) -> str:
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=1, decode_responses=True)
        try:
            return str(client.info("replication")["role"])
        finally:
            client.close()


class RedisClusterServer:
    """Six nodes (3 masters, 3 replicas) on free ports; `url` is `redis+cluster://host:port/`."""

    host = "127.0.0.1"

    def __init__(self, *, masters: int = 3, node_timeout_ms: int = 1000, ready_timeout: float = 30.0) -> None:
        self.masters = masters
        self.node_timeout_ms = node_timeout_ms
        self.ready_timeout = ready_timeout
        self.nodes: list[ClusterNode] = []

    @property
    def url(self) -> str:
        """The seed-node URL: any live node works; redis-py discovers the others."""
        live = next((n for n in self.nodes if n.running), self.nodes[0])
        return f"{CLUSTER_SCHEME}://{self.host}:{live.port}/"

    def start(self) -> RedisClusterServer:
        binary = redis_server_binary()
        cli = shutil.which("redis-cli") or str(Path(binary).with_name("redis-cli"))
        try:
            for _ in range(self.masters * 2):
                self.nodes.append(ClusterNode(node_timeout_ms=self.node_timeout_ms, binary=binary).start())
            create = subprocess.run(
                [cli, "--cluster", "create", *(f"{n.host}:{n.port}" for n in self.nodes)]
                + ["--cluster-replicas", "1", "--cluster-yes"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if create.returncode != 0:
                raise ServerStartError(f"redis-cli --cluster create failed:\n{create.stdout}\n{create.stderr}")
            self.wait_healthy()
        except BaseException:
            self.close()
            raise
        return self

    def wait_healthy(self) -> None:
        """Wait until every live node says `cluster_state:ok` and knows every node, and every
        replica has synced with its master (redis-cli's create returns before either)."""
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if all(self._state_ok(n) for n in self.nodes if n.running):
                return
            time.sleep(0.1)
        raise ServerStartError(f"the Redis Cluster did not become healthy within {self.ready_timeout:.0f} s")

    def _state_ok(self, node: ClusterNode) -> bool:
        client = redis.Redis(host=node.host, port=node.port, socket_timeout=1, decode_responses=True)
        try:
            info = client.cluster("info")
            if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != len(self.nodes):
                return False
            replication = client.info("replication")
            return replication["role"] == "master" or replication.get("master_link_status") == "up"
        except redis.RedisError:
            return False
        finally:
            client.close()

    def client(self, **kwargs: object) -> RedisCluster:
        """A redis-py cluster client (decoded strings unless told otherwise)."""
        kwargs.setdefault("decode_responses", True)
        live = next(n for n in self.nodes if n.running)
        return RedisCluster(host=self.host, port=live.port, **kwargs)  # type: ignore[arg-type]

    def master_of(self, key: str) -> ClusterNode:
        """The node serving `key`'s slot now."""
        client = self.client()
        try:
            node = client.get_node_from_key(key)
            return next(n for n in self.nodes if n.port == node.port)
        finally:
            client.close()

    def flushall(self) -> None:
        client = self.client()
        try:
            client.flushall(target_nodes=RedisCluster.PRIMARIES)
        finally:
            client.close()

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.nodes.clear()

    def __enter__(self) -> RedisClusterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
