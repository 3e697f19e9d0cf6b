"""Liveness (`/healthz`) and readiness (`/readyz`) probes.

Each check is a callable returning a CheckResult; the lists live in settings
(LIVENESS_CHECKS, READINESS_CHECKS) so an app can add its own (the weather app adds its
circuit breaker to liveness).
"""

import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils.module_loading import import_string

from workers.connection import UNAVAILABLE_ERRORS, get_redis


@dataclass
class CheckResult:
    name: str
    ok: bool
    details: dict[str, Any] = field(default_factory=dict)


def check_database() -> CheckResult:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        return CheckResult("database", False, {"error": str(exc)})
    return CheckResult("database", True, {"rtt_ms": round((time.perf_counter() - started) * 1000, 2)})


def check_redis() -> CheckResult:
    started = time.perf_counter()
    try:
        get_redis().ping()
    except UNAVAILABLE_ERRORS as exc:
        return CheckResult("redis", False, {"error": str(exc)})
    return CheckResult("redis", True, {"rtt_ms": round((time.perf_counter() - started) * 1000, 2)})


def run_checks(paths: list[str]) -> tuple[bool, dict[str, Any]]:
    results = [import_string(path)() for path in paths]
    return all(r.ok for r in results), {r.name: {"ok": r.ok, **r.details} for r in results}
