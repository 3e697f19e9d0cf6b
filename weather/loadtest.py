"""The seed's load-test script as a service: health check first, then N forecast requests
(sequential or concurrent) cycling through the seed's city/location pairs, then success
rate and latency figures. Standard library only (it runs from any host with the code).
"""

import http.client
import json
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# The 15 city/location pairs the seed's load test cycles through.
CITY_LOCATIONS = [
    ("New York", "Downtown"),
    ("London", "Westminster"),
    ("Tokyo", "Shibuya"),
    ("Paris", "Montmartre"),
    ("Sydney", "Harbour"),
    ("Berlin", "Mitte"),
    ("Toronto", "Yorkville"),
    ("Singapore", "Marina Bay"),
    ("Dubai", "Marina"),
    ("Mumbai", "Bandra"),
    ("São Paulo", "Paulista"),
    ("Cape Town", "Waterfront"),
    ("Moscow", "Arbat"),
    ("Seoul", "Gangnam"),
    ("Mexico City", "Condesa"),
]


class LoadTestAborted(Exception):
    """The target is not healthy; no request was sent."""


@dataclass
class LoadTestReport:
    mode: str
    count: int
    concurrency: int
    elapsed_s: float
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # of successful requests
    errors: Counter = field(default_factory=Counter)

    @property
    def succeeded(self) -> int:
        return self.statuses.get(200, 0)

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile of the successful requests' latencies."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def summary(self) -> dict:
        lat = self.latencies_ms

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 2)

        return {
            "mode": self.mode,
            "requests": self.count,
            "concurrency": self.concurrency,
            "succeeded": self.succeeded,
            "failed": self.count - self.succeeded,
            "success_rate": round(self.succeeded / self.count, 4) if self.count else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=lambda kv: str(kv[0]))},
            "errors": dict(self.errors),
            "elapsed_s": round(self.elapsed_s, 3),
            "requests_per_s": round(self.count / self.elapsed_s, 1) if self.elapsed_s else None,
            "avg_ms": ms(statistics.fmean(lat)) if lat else None,
            "min_ms": ms(min(lat)) if lat else None,
            "max_ms": ms(max(lat)) if lat else None,
            "p50_ms": ms(self.percentile(50)),
            "p95_ms": ms(self.percentile(95)),
            "p99_ms": ms(self.percentile(99)),
        }


class _Client:
    """One keep-alive HTTP connection per thread."""

    def __init__(self, base_url: str, token: str | None, timeout: float):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.host, self.port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Token {token}"
        self.local = threading.local()

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = self.cls(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, self.prefix + path, body=json.dumps(body) if body else None, headers=self.headers)
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise


def weather_loadtest(
    *,
    url: str,
    token: str | None,
    mode: str,
    count: int,
    concurrency: int = 10,
    timeout: float = 60.0,
    progress: Callable[[int, int], None] | None = None,
) -> LoadTestReport:
    """Check `/healthz`, then send `count` `POST /WeatherForecast/city` requests.

    Raises LoadTestAborted when the health check does not answer 200.
    """
    if mode not in ("sequential", "concurrent"):
        raise ValueError(f"mode must be sequential or concurrent, not {mode!r}")
    client = _Client(url, token, timeout)
    try:
        status, body = client.request("GET", "/healthz")
    except (OSError, http.client.HTTPException) as exc:
        raise LoadTestAborted(f"{url}/healthz unreachable: {exc}") from exc
    if status != 200:
        raise LoadTestAborted(f"{url}/healthz answered {status}: {body.decode(errors='replace')[:500]}")

    workers = 1 if mode == "sequential" else max(1, concurrency)
    report = LoadTestReport(mode=mode, count=count, concurrency=workers, elapsed_s=0.0)
    lock = threading.Lock()
    done = 0

    def one(index: int) -> None:
        nonlocal done
        city, location = CITY_LOCATIONS[index % len(CITY_LOCATIONS)]
        started = time.perf_counter()
        try:
            status, _ = client.request("POST", "/WeatherForecast/city", {"city": city, "location": location})
            error = None
        except (OSError, http.client.HTTPException) as exc:
            status, error = None, type(exc).__name__
        elapsed_ms = (time.perf_counter() - started) * 1000
        with lock:
            done += 1
            if error:
                report.errors[error] += 1
                report.statuses["error"] += 1
            else:
                report.statuses[status] += 1
                if status == 200:
                    report.latencies_ms.append(elapsed_ms)
            if progress:
                progress(done, count)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(count)))
    report.elapsed_s = time.perf_counter() - started
    return report
