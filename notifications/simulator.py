"""Seed 001's traffic simulator: POST /event at a steady rate, report what happened."""

import random
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

WORDS = [
    "battery",
    "order",
    "campaign",
    "weather",
    "sensor",
    "alert",
    "update",
    "user",
    "device",
    "payment",
    "stock",
    "report",
]


@dataclass
class SimulationResult:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    status_counts: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
            "elapsed_s": round(self.elapsed_s, 2),
            "rate_per_s": round(self.sent / self.elapsed_s, 1) if self.elapsed_s else 0,
            "latency_ms": {
                "avg": round(statistics.fmean(lat), 2) if lat else None,
                "p50": pct(0.50),
                "p95": pct(0.95),
                "p99": pct(0.99),
                "max": round(lat[-1], 2) if lat else None,
            },
        }


def simulate_events(
    *,
    url: str,
    token: str,
    rate: float,
    duration: float,
    concurrency: int = 8,
    on_progress: Callable[[SimulationResult], None] | None = None,
) -> SimulationResult:
    """Send `rate` events per second for `duration` seconds to `url` (…/event).

    Requests are scheduled on a fixed timetable (t0 + i/rate), so a slow server shows up
    as latency and a lower achieved rate rather than as silently fewer requests.
    """
    result = SimulationResult()
    lock = threading.Lock()
    local = threading.local()
    total = max(1, int(rate * duration))

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers["Authorization"] = f"Token {token}"
        return local.session

    def send(index: int) -> None:
        description = f"{random.choice(WORDS)} {random.choice(WORDS)} #{index}"
        started = time.perf_counter()
        try:
            response = session().post(url, json={"description": description}, timeout=10)
            status = response.status_code
        except requests.RequestException:
            status = 0
        elapsed_ms = (time.perf_counter() - started) * 1000
        with lock:
            result.sent += 1
            result.status_counts[status] = result.status_counts.get(status, 0) + 1
            if status == 200:
                result.ok += 1
                result.latencies_ms.append(elapsed_ms)
            else:
                result.errors += 1

    t0 = time.monotonic()
    next_progress = t0 + 1
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for index in range(total):
            delay = t0 + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, index)
            if on_progress and time.monotonic() >= next_progress:
                result.elapsed_s = time.monotonic() - t0
                on_progress(result)
                next_progress += 1
    result.elapsed_s = time.monotonic() - t0
    return result
