"""Shared pieces of the benchmarks: servers, a migrated database, gunicorn, a load generator.

Every benchmark prints progress on stderr and one JSON document on stdout, and compares
its figure with a baseline measured in the same run (this machine is shared and noisy,
so only ratios travel).
"""

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from commsplatform.devservers import RedisServer, free_port, port_is_open

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


class CpuMeter:
    """CPU seconds used by each part of the stack between two snapshots (where the 2 cores go)."""

    def __init__(self, parts: dict[str, Callable[[], list[psutil.Process]]]):
        self.parts = parts
        self._last = self._snapshot()

    def _snapshot(self) -> dict[str, float]:
        totals = {}
        for name, processes in self.parts.items():
            seconds = 0.0
            for process in processes():
                try:
                    times = process.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                seconds += times.user + times.system
            totals[name] = seconds
        machine = psutil.cpu_times()
        totals["machine"] = machine.user + machine.system + machine.nice + machine.irq + machine.softirq
        return totals

    def per_request_ms(self, requests: int) -> dict[str, float]:
        """CPU ms per request of each part since the last call."""
        now = self._snapshot()
        used = {name: round((now[name] - self._last[name]) * 1000 / max(requests, 1), 3) for name in now}
        self._last = now
        return used


def process_tree(pid: int | None) -> Callable[[], list[psutil.Process]]:
    """For CpuMeter: a process and the children it has at each snapshot."""

    def processes() -> list[psutil.Process]:
        if pid is None:
            return []
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    return processes


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(result: dict) -> None:
    print(json.dumps(result, indent=2))


@dataclass
class Stack:
    """A Redis server and a migrated SQLite database in a temp dir, with an API token."""

    redis: RedisServer
    env: dict[str, str]
    token: str
    tmp: Path

    def manage(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True, text=True, **kwargs
        )

    def close(self) -> None:
        self.redis.stop()


def start_stack(settings_module: str = "bench.settings", extra_env: dict[str, str] | None = None) -> Stack:
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    redis_server = RedisServer().start()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DJANGO_DEBUG": "0",
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{tmp / 'db.sqlite3'}"),
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    stack = Stack(redis=redis_server, env=env, token="", tmp=tmp)
    log(f"stack: redis {redis_server.url}, database {env['DATABASE_URL']}")
    stack.manage("migrate", "--noinput")
    login = stack.manage("ensure_admin", "--username", "bench", "--password-file", str(tmp / "pw"), "--json").stdout
    stack.token = json.loads(login)["token"]
    return stack


class Gunicorn:
    def __init__(self, stack: Stack, *, workers: int = 2, threads: int = 4):
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                PYTHON, "-m", "gunicorn", "commsplatform.wsgi",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(workers),
                "--worker-class", "gthread",
                "--threads", str(threads),
                "--log-level", "warning",
            ],
            cwd=ROOT,
            env=stack.env,
            stdout=subprocess.DEVNULL,
            stderr=open(stack.tmp / "gunicorn.log", "ab"),
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not port_is_open("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"gunicorn did not start; see {stack.tmp / 'gunicorn.log'}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def stop_processes(processes: list[subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM them all, give each `timeout` seconds to finish its batch, then SIGKILL."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class LoadResult:
    requests: int
    errors: int
    elapsed_s: float
    latencies_ms: list[float] = field(repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")

    def summary(self) -> dict:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_s": round(self.rps, 1),
            "p50_ms": round(self.percentile(0.50), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else None,
        }


def http_load(
    *,
    port: int,
    method: str,
    path: str,
    body: Callable[[int], bytes] | None,
    headers: dict[str, str],
    concurrency: int,
    duration_s: float,
    ok_status: int = 200,
) -> LoadResult:
    """Closed-loop load: `concurrency` keep-alive connections, each sending back to back."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    stop_at = time.monotonic() + duration_s

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body(index * 1_000_000 + n) if body else None, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status == ok_status:
                    latencies[index].append((time.perf_counter() - started) * 1000)
                else:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    flat = [x for per in latencies for x in per]
    return LoadResult(requests=len(flat) + sum(errors), errors=sum(errors), elapsed_s=elapsed, latencies_ms=flat)
