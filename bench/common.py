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
    """CPU seconds used by each part of the stack between two snapshots (where the 2 cores go).

    Each process's last reading is kept: one that exits between snapshots (a PostgreSQL
    backend whose client disconnected, a restarted worker) still counts what it used up
    to its last snapshot instead of taking it back out of its part's total.
    """

    def __init__(self, parts: dict[str, Callable[[], list[psutil.Process]]]):
        self.parts = parts
        self._seen: dict[str, dict[tuple[int, float], float]] = {name: {} for name in parts}
        self._last = self._snapshot()

    def _snapshot(self) -> dict[str, float]:
        totals = {}
        for name, processes in self.parts.items():
            seen = self._seen[name]
            for process in processes():
                try:
                    with process.oneshot():
                        key = (process.pid, process.create_time())
                        times = process.cpu_times()
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    continue  # it keeps its last reading
                seen[key] = max(seen.get(key, 0.0), times.user + times.system)
            totals[name] = sum(seen.values())
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


GUNICORN_CONF = ROOT / "docker" / "gunicorn.conf.py"


class Gunicorn:
    """The shipped shape: docker/gunicorn.conf.py (gthread, 2 × 4, access log), `app` on a free port."""

    def __init__(self, stack: Stack, *, workers: int = 2, threads: int = 4, app: str = "commsplatform.wsgi"):
        self.port = free_port()
        env = {
            **stack.env,
            "BIND_HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "WEB_THREADS": str(threads),
            "LOG_LEVEL": "warning",
        }
        self.process = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "-c", str(GUNICORN_CONF), app],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,  # the access log (one line per request, as shipped)
            stderr=open(stack.tmp / "gunicorn.log", "ab"),
        )
        deadline = time.monotonic() + 30
        while not port_is_open("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"gunicorn did not start; see {stack.tmp / 'gunicorn.log'}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.process.pid

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


def open_loop(
    *,
    port: int,
    path: str,
    rate: float,
    duration_s: float,
    headers: dict[str, str],
    bodies: list[str] | None = None,
    method: str = "POST",
    ok_status: int = 200,
    tokens: list[str] | None = None,
) -> dict:
    """One run of bench/openloop.py (its own process): `rate` requests/s for `duration_s`."""
    command = [PYTHON, "-m", "bench.openloop", "--port", str(port), "--path", path, "--method", method]
    command += ["--rate", str(rate), "--duration", str(duration_s), "--ok", str(ok_status)]
    for token in tokens or []:
        command += ["--token", token]
    for name, value in headers.items():
        if name.lower() != "content-type":
            command += ["--header", f"{name}: {value}"]
    if bodies:
        with tempfile.NamedTemporaryFile("w", suffix=".bodies", delete=False) as f:
            f.write("\n".join(bodies) + "\n")
        command += ["--bodies", f.name]
    done = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def event_rate_search(
    *,
    port: int,
    tokens: list[str],
    headers: dict[str, str],
    start: float = 200,
    step_s: float = 4,
    retry_not_held: bool = False,
    refine: int = 2,
) -> dict:
    """The highest offered `POST /event` rate the stack sustains: the yardstick the other
    open-loop figures are quoted against, measured in the same run (searched as the other
    route is: the same `refine` and `retry_not_held`)."""
    bodies = event_bodies()
    return highest_sustained_rate(
        lambda rate: open_loop(
            port=port, path="/event", rate=rate, duration_s=step_s, headers=headers, bodies=bodies, tokens=tokens
        ),
        start=start,
        retry_not_held=retry_not_held,
        refine=refine,
    )


def sustained(result: dict, p99_limit_ms: float) -> bool:
    """Every request answered right, p99 within the limit, and latency not climbing (no backlog)."""
    return (
        result["errors"] == 0
        and result["unanswered"] == 0
        and result["p99_ms"] is not None
        and result["p99_ms"] <= p99_limit_ms
        and result["last_fifth_p50_ms"] <= p99_limit_ms / 2
    )


def highest_sustained_rate(
    run: Callable[[float], dict],
    *,
    start: float,
    p99_limit_ms: float = 100.0,
    factor: float = 1.5,
    refine: int = 2,
    retry_not_held: bool = False,
) -> dict:
    """Step the offered rate up by `factor` until a step is not sustained, then bisect (geometric)
    `refine` times between the last rate that held and the first that did not: the highest
    rate held is then known to within a factor of `factor ** (1 / 2 ** refine)` (1.5 and 2:
    11 %; 3: 5 %).

    With `retry_not_held`, a step that is not sustained is run once more, and the rate holds
    if that second try does: on a shared machine one burst of someone else's work during a
    few seconds' step would otherwise end a search far below the stack's real limit. Both
    sides of a ratio must be searched alike."""
    steps = []

    def attempt(rate: float) -> bool:
        result = run(round(rate, 1))
        ok = sustained(result, p99_limit_ms)
        steps.append({**result, "sustained": ok})
        log(
            f"  {rate:7.1f}/s offered: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"errors {result['errors']}, {'held' if ok else 'not held'}"
        )
        return ok

    def step(rate: float) -> bool:
        return attempt(rate) or (retry_not_held and attempt(rate))

    good, bad = 0.0, None
    rate = start
    while bad is None:
        if step(rate):
            good, rate = rate, rate * factor
        else:
            bad = rate
        if rate > 50_000:
            break
    for _ in range(refine if bad is not None and good else 0):
        middle = (good * bad) ** 0.5
        if step(middle):
            good = middle
        else:
            bad = middle
    return {
        "highest_sustained_rate": round(good, 1),
        "first_rate_not_sustained": round(bad, 1) if bad else None,
        "resolution": round(factor ** (1 / 2**refine), 3) if bad is not None and good else None,
        "criteria": f"0 errors, p99 ≤ {p99_limit_ms:g} ms from the scheduled send, no climbing latency"
        + ("; a step not held is tried once more" if retry_not_held else ""),
        "steps": [
            {k: s[k] for k in ("offered_rate", "p50_ms", "p99_ms", "errors", "sustained", "driver_cpu_ms_per_request")}
            for s in steps
        ],
    }


def result_row(*, figure: float, baseline: float, target: float, name: str, unit: str = "ratio", **extra) -> dict:
    """The keys every benchmark's JSON carries for `make bench`'s closing table.

    `figure` and `baseline` are measured in the same run; `ratio` = figure / baseline, and
    `met` compares it (or `figure` when `unit` is not "ratio": then `target` is an upper bound).
    """
    ratio = round(figure / baseline, 3) if baseline else None
    if unit == "ratio":
        met = ratio is not None and ratio >= target
    else:
        met = figure <= target
    return {
        "name": name,
        "figure": figure,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "unit": unit,
        "met": met,
        **extra,
    }


PRODUCTION_ENV = {
    # What commsplatform.settings.production refuses to start without (values for this machine).
    "DJANGO_SECRET_KEY": "bench-" + "0123456789abcdef" * 4,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "LOG_FORMAT": "json",
}
# Behind nginx, which tells Django the client came over TLS; without it every request is a
# redirect to https (SECURE_SSL_REDIRECT).
BEHIND_TLS_PROXY = {"X-Forwarded-Proto": "https"}

PRODUCER_TOKENS = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from commsplatform.roles import roles_ensure
roles_ensure()
producers = Group.objects.get(name="producers")
for i in range({count}):
    user, _ = get_user_model().objects.get_or_create(username=f"bench-producer-{{i}}")
    user.groups.add(producers)
    print(Token.objects.get_or_create(user=user)[0].key)
"""


def producer_tokens(stack: Stack, count: int) -> list[str]:
    """API tokens of `count` users in the producers role (not staff: the permission check runs).

    Load is spread over several tokens so that the per-token rate limit (THROTTLE_USER,
    100000/minute) is checked on every request but not reached by a benchmark's burst."""
    out = stack.manage("shell", "-c", PRODUCER_TOKENS.format(count=count)).stdout
    return [word for word in out.split() if len(word) == 40 and all(c in "0123456789abcdef" for c in word)]


WRK = "/usr/bin/wrk"
WRK_SCRIPT = """
local tokens = {{{tokens}}}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{headers}
request = function()
  n = n + 1
  wrk.headers["Authorization"] = "Token " .. tokens[(n % #tokens) + 1]
  return wrk.format(nil, nil, nil, '{{"description": "bench event ' .. n .. ' ' .. string.rep("x", 160) .. '"}}')
end
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {{"requests": %d, "duration_us": %d, "non_2xx_3xx": %d, "connect_errors": %d, '
    .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_post(
    *, port: int, path: str, tokens: list[str], headers: dict[str, str], seconds: float, connections: int, tmp: Path
) -> dict:
    """Closed-loop POSTs of ~200-byte events from wrk (2 threads), rotating over `tokens`."""
    script = tmp / "post.lua"
    script.write_text(
        WRK_SCRIPT.format(
            tokens=", ".join(f'"{t}"' for t in tokens),
            headers="\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()),
        )
    )
    done = subprocess.run(
        [WRK, "-t2", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), f"http://127.0.0.1:{port}{path}"],
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRKJSON "))
    result = json.loads(line[len("WRKJSON ") :])
    result["rps"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    result["errors"] = sum(
        result[k] for k in ("non_2xx_3xx", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return result


def event_bodies(count: int = 64) -> list[str]:
    """~200-byte `POST /event` bodies for the open-loop driver."""
    return [json.dumps({"description": f"bench event {{n}} {i} " + "x" * 160}) for i in range(count)]
