"""The common life cycle of a local server that runs as a child process.

Every dev server is started on a free port, waited for until it answers (or fails with
its log tail), and stopped, killed or restarted on the same port with the same data
directory, so that clients holding its URL reconnect to it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

LOG_TAIL_LINES = 40


class ServerStartError(RuntimeError):
    """A dev server did not become ready; the message carries its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(empty log at {path})"


def wait_for(ready: Callable[[], bool], *, timeout: float, failed: Callable[[], bool], interval: float = 0.05) -> bool:
    """Poll `ready()` until it is true; stop early (False) as soon as `failed()` is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if failed():
            return False
        if ready():
            return True
        time.sleep(interval)
    return False


class ProcessServer:
    """Base class: a server process with a port, a data directory and a log file.

    Subclasses define `command()` and `is_ready()`. The process gets its own session so
    that a Ctrl-C in the terminal reaches only the supervisor, which then stops the
    servers after the processes that use them.
    """

    name = "server"
    host = "127.0.0.1"
    ready_timeout = 30.0
    start_attempts = 3

    def __init__(self, *, port: int | None = None, data_dir: str | Path | None = None) -> None:
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(self.host)
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.data_dir = self.data_dir.resolve()
        self.log_path = self.data_dir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    # --- what subclasses define ---------------------------------------------------------
    def command(self) -> list[str]:
        """The argv that runs the server on `self.port`."""
        raise NotImplementedError

    def is_ready(self) -> bool:
        """Whether the server answers requests (called repeatedly while starting)."""
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The child's environment; None inherits ours."""
        return None

    # --- life cycle ---------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the server and wait until it answers; raise ServerStartError if not."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Only a port we picked ourselves may be replaced: someone else can grab a free
        # port between our probe and the server's bind.
        attempts = 1 if self._fixed_port else self.start_attempts
        for attempt in range(1, attempts + 1):
            if port_is_open(self.host, self.port):
                # Someone else answers there; readiness checks would mistake it for us.
                if self._fixed_port:
                    raise ServerStartError(f"{self.name}: port {self.host}:{self.port} is already in use")
                self.port = free_port(self.host)
            self._spawn()
            if wait_for(self.is_ready, timeout=self.ready_timeout, failed=lambda: not self.running):
                atexit.register(self.stop)
                return self
            exited = not self.running
            self._terminate(timeout=5)
            if exited and attempt < attempts:
                self.port = free_port(self.host)
                continue
            break
        reason = "exited" if exited else f"did not answer within {self.ready_timeout:.0f} s"
        raise ServerStartError(
            f"{self.name} on port {self.port} {reason}: {shlex.join(self.command())}\n"
            f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
        )

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.data_dir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _signal(self, signum: int) -> None:
        # Never signal a reaped child: with pid_max at 32768 its pid (and so its group id)
        # may already belong to another process.
        if self._process is None or self._process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def _terminate(self, timeout: float) -> None:
        if self._process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after `timeout`); data stays."""
        self._terminate(timeout)
        atexit.unregister(self.stop)

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would; data on disk stays."""
        if self._process is not None:
            self._signal(signal.SIGKILL)
            self._process.wait()
        atexit.unregister(self.stop)

    def restart(self) -> Self:
        """Stop (if running) and start again on the same port with the same data."""
        self.stop()
        self._fixed_port = True
        return self.start()

    def close(self) -> None:
        """Stop, and delete the data directory if it is a temporary one we made."""
        self.stop()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self.port} {state}>"
