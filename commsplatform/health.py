"""Liveness (`/healthz`) and readiness (`/readyz`) probes.

Each check is a callable returning a CheckResult; the lists live in settings
(LIVENESS_CHECKS, READINESS_CHECKS) so an app can add its own (the weather app adds its
circuit breaker to liveness). A check that passes but wants an operator's attention sets
`degraded` (the probe stays 200; its status says "degraded").
"""

import time
from dataclasses import dataclass, field
from typing import Any

import redis
from django.db import DatabaseError, connection
from django.utils.module_loading import import_string

from workers.connection import REFUSED_WRITE_ERRORS, UNAVAILABLE_ERRORS, get_redis, refused_write_reason
from workers.redis_epoch import epoch_status

WRITE_PROBE_KEY = "commsplatform:health:write-probe"


@dataclass
class CheckResult:
    name: str
    ok: bool
    details: dict[str, Any] = field(default_factory=dict)
    degraded: bool = False


def check_database() -> CheckResult:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        return CheckResult("database", False, {"error": str(exc)})
    return CheckResult("database", True, {"rtt_ms": round((time.perf_counter() - started) * 1000, 2)})


def check_redis() -> CheckResult:
    """Redis answers and takes writes: a PING alone passes on a Redis that is out of memory
    under `noeviction` (OOM) or a read-only replica (READONLY), where every XADD fails."""
    started = time.perf_counter()
    client = get_redis()
    try:
        client.ping()
    except UNAVAILABLE_ERRORS as exc:
        return CheckResult("redis", False, {"error": str(exc)})
    try:
        client.set(WRITE_PROBE_KEY, "1", px=10_000)
    except UNAVAILABLE_ERRORS as exc:
        return CheckResult("redis", False, {"error": str(exc)})
    except REFUSED_WRITE_ERRORS as exc:
        return CheckResult("redis", False, {"writable": False, "error": refused_write_reason(exc)})
    except redis.ResponseError as exc:  # e.g. NOPERM: a user without write rights
        return CheckResult("redis", False, {"writable": False, "error": f"Redis refuses writes: {exc}"})
    return CheckResult("redis", True, {"writable": True, "rtt_ms": round((time.perf_counter() - started) * 1000, 2)})


def check_redis_data() -> CheckResult:
    """Whether Redis lost its data (workers.redis_epoch): degraded, not failed.

    Not a 503: the web processes are as able to serve as before (the database is intact,
    new work flows), and a failing readiness probe on every replica at once would turn a
    delay that the reconciler repairs into a full outage.
    """
    try:
        try:
            status = epoch_status(get_redis())
        except UNAVAILABLE_ERRORS:
            status = epoch_status(None)  # check_redis reports the outage itself
    except DatabaseError as exc:
        return CheckResult("redis_data", True, {"error": f"cannot read the Redis epoch: {exc}"})
    details: dict[str, Any] = {"losses": status.losses, "detail": status.describe()}
    if status.last_loss_at is not None:
        details["last_loss_at"] = status.last_loss_at.isoformat()
    return CheckResult("redis_data", True, details, degraded=status.alarm)


def run_checks(paths: list[str]) -> tuple[bool, dict[str, Any]]:
    results = [import_string(path)() for path in paths]
    return all(r.ok for r in results), {
        r.name: {"ok": r.ok, **({"degraded": True} if r.degraded else {}), **r.details} for r in results
    }
