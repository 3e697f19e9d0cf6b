"""Deployment fixtures: docker/entrypoint.sh run beside the test, a TLS Redis, a fake Vault."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis

from commsplatform.devservers import RedisServer
from tests.helpers import REPO_ROOT, WorkerProcess, subprocess_environment

ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"


def production_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the compose file gives every app container, pointed at the test's servers."""
    env = subprocess_environment()
    env.update(
        DJANGO_SETTINGS_MODULE="commsplatform.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="comms.example.com,127.0.0.1",
        LOG_FORMAT="json",
        # The image's PATH: `python` is the virtualenv's.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "DJANGO_DEBUG"):
        env.pop(name, None)
    env.update(extra or {})
    return env


class EntrypointProcess(WorkerProcess):
    """`docker/entrypoint.sh <args>` as the image runs it, output in a temp file."""

    def __init__(self, args: tuple[str, ...], env: Mapping[str, str]) -> None:
        self.args = args
        self._log = tempfile.NamedTemporaryFile(prefix="entrypoint-", suffix=".log", delete=False)
        self._process = subprocess.Popen(
            [str(ENTRYPOINT), *args],
            cwd="/",  # the script finds the code itself, as in the image
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __repr__(self) -> str:
        return f"<EntrypointProcess entrypoint.sh {' '.join(self.args)} pid={self.pid} rc={self.returncode}>"


def run_entrypoint(*args: str, env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `docker/entrypoint.sh <args>` to completion (stdout and stderr captured, as text)."""
    return subprocess.run(
        [str(ENTRYPOINT), *args], cwd="/", env=dict(env), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def entrypoint() -> Iterator[Callable[..., EntrypointProcess]]:
    """Factory: `entrypoint("worker", "notifications", env=...)`; stopped (and its output printed) at teardown."""
    started: list[EntrypointProcess] = []

    def start(*args: str, env: Mapping[str, str]) -> EntrypointProcess:
        process = EntrypointProcess(args, env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
        print(f"--- {process!r} output ---\n{process.output()}")
        process.close()


# --- Redis over TLS ---------------------------------------------------------------------
class TlsRedisServer(RedisServer):
    """The Debian redis-server with TLS only (`--port 0 --tls-port N`) and a self-signed certificate."""

    name = "redis-tls"

    def __init__(self, cert: Path, key: Path, password: str | None = None) -> None:
        super().__init__(password=password)
        self.cert, self.key = cert, key

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"rediss://{auth}{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        argv = super().command()
        argv[argv.index("--port") + 1] = "0"
        return [
            *argv,
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.cert),
            "--tls-key-file", str(self.key),
            "--tls-ca-cert-file", str(self.cert),
            "--tls-auth-clients", "no",
        ]  # fmt: skip

    def is_ready(self) -> bool:
        client = redis.Redis.from_url(
            self.url, ssl_ca_certs=str(self.cert), socket_connect_timeout=0.5, socket_timeout=1
        )
        try:
            return client.info("server")["process_id"] == self.pid
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()


@pytest.fixture(scope="session")
def self_signed_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI): (cert.pem, key.pem)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_redis_server(self_signed_cert: tuple[Path, Path]) -> Iterator[TlsRedisServer]:
    """A password-protected Redis that only speaks TLS."""
    cert, key = self_signed_cert
    with TlsRedisServer(cert, key, password=secrets.token_hex(16)) as server:
        yield server


# --- a fake of Vault's KV v2 read API ----------------------------------------------------
class FakeVault:
    """Answers GET /v1/<mount>/data/<path> like Vault's KV v2 engine (Vault itself cannot be installed here)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.secrets: dict[str, dict[str, str]] = {}  # "<mount>/<path>" -> data
        self.requests: list[tuple[str, str | None]] = []
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                vault.requests.append((self.path, self.headers.get("X-Vault-Token")))
                if self.headers.get("X-Vault-Token") != vault.token:
                    self._reply(403, {"errors": ["permission denied"]})
                    return
                mount, _, path = self.path.removeprefix("/v1/").partition("/data/")
                data = vault.secrets.get(f"{mount}/{path}")
                if data is None:
                    self._reply(404, {"errors": []})
                    return
                self._reply(200, {"data": {"data": data, "metadata": {"version": 1}}})

            def _reply(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fake_vault() -> Iterator[FakeVault]:
    vault = FakeVault(token=secrets.token_hex(16))
    yield vault
    vault.close()
