"""Retries and the circuit breaker around the web side's Redis calls.

Every Redis call a request makes goes through `guarded(fn)`: it is retried
settings.WEATHER_REDIS_RETRIES times (3) with exponential backoff, and the whole retried
call counts as one outcome for a pybreaker circuit breaker. After
settings.WEATHER_BREAKER_FAIL_MAX (5) consecutive failed calls the breaker opens for
settings.WEATHER_BREAKER_RESET_S (30 s): calls fail at once with `CircuitOpen` (the API
answers 503 without touching Redis). After that time one trial call is let through
(half-open); success closes the breaker, failure opens it again.

The breaker is per process on purpose: it protects this process's threads from piling
up on a dead Redis, and its state cannot live in the Redis it guards. Only "Redis is
unreachable" errors count; a reply timeout says nothing about Redis and is not a failure.
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import pybreaker
from django.conf import settings
from django.core.signals import setting_changed

from workers.backoff import backoff
from workers.connection import UNAVAILABLE_ERRORS
from workers.publish import StreamUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE: tuple[type[BaseException], ...] = (StreamUnavailable, *UNAVAILABLE_ERRORS)

# redis_circuit_state values (the seed's gauge): 0 closed, 1 open, 2 half-open.
STATE_CODES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_OPEN: 1, pybreaker.STATE_HALF_OPEN: 2}


class CircuitOpen(Exception):
    """The breaker is open: Redis failed too often; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class _Tracker(pybreaker.CircuitBreakerListener):
    """Keeps what /healthz explains: the last error and when the state changed."""

    def __init__(self) -> None:
        self.last_error: str | None = None
        self.changed_at: float = time.time()

    def failure(self, cb, exc):
        self.last_error = f"{type(exc).__name__}: {exc}"

    def state_change(self, cb, old_state, new_state):
        self.changed_at = time.time()
        logger.warning(
            "redis circuit breaker %s -> %s (last error: %s)",
            old_state.name if old_state else "-",
            new_state.name,
            self.last_error,
        )


class _Breaker(pybreaker.CircuitBreaker):
    def call(self, func, *args, **kwargs):
        # pybreaker's own `call` holds its lock for the whole guarded call, which would
        # serialise every thread's Redis calls (and their retries during an outage).
        # State changes still take the lock inside pybreaker; a half-open breaker may let
        # a few concurrent trial calls through, which is harmless here.
        return self.state.call(func, *args, **kwargs)


_lock = threading.Lock()
_breaker: pybreaker.CircuitBreaker | None = None
_tracker = _Tracker()


def breaker() -> pybreaker.CircuitBreaker:
    global _breaker
    if _breaker is None:
        with _lock:
            if _breaker is None:
                _breaker = _Breaker(
                    fail_max=settings.WEATHER_BREAKER_FAIL_MAX,
                    reset_timeout=settings.WEATHER_BREAKER_RESET_S,
                    listeners=[_tracker],
                    # Anything but "Redis unreachable" (a bug, bad data) says nothing about Redis.
                    exclude=[lambda exc: not isinstance(exc, RETRYABLE)],
                    name="redis",
                )
    return _breaker


def reset_breaker() -> None:
    """Forget the breaker (tests, or settings changed); the next call builds a closed one."""
    global _breaker
    with _lock:
        _breaker = None
    _tracker.last_error = None
    _tracker.changed_at = time.time()


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting.startswith("WEATHER_BREAKER_") or setting == "REDIS_URL":
        reset_breaker()


setting_changed.connect(_on_setting_changed)


def _retry_in(cb: pybreaker.CircuitBreaker) -> float:
    opened_at = cb._state_storage.opened_at  # pybreaker keeps it only in its storage
    if opened_at is None:
        return 0.0
    return max(0.0, cb.reset_timeout - (datetime.now(UTC) - opened_at).total_seconds())


def guarded(fn: Callable[[], T]) -> T:
    """Call `fn` (which talks to Redis) with retries, under the circuit breaker.

    Raises CircuitOpen when the breaker is (or just became) open; re-raises the last
    Redis error after the retries otherwise.
    """
    cb = breaker()
    try:
        return cb.call(_with_retries, fn)
    except pybreaker.CircuitBreakerError as exc:
        retry_after = _retry_in(cb)
        raise CircuitOpen(
            f"Redis circuit open after {cb.fail_max} consecutive failures ({_tracker.last_error}); "
            f"retry in {retry_after:.0f} s.",
            retry_after,
        ) from exc


def _with_retries(fn: Callable[[], T]) -> T:
    """`fn()`, retried on Redis errors after 0.05, 0.1, 0.2 s (base × 2^n, capped).

    A plain loop: a tenacity `Retrying` per request cost about 25 µs of CPU, more than half
    of what the request's XADD costs the web process.
    """
    retries = settings.WEATHER_REDIS_RETRIES
    for attempt in range(retries + 1):
        try:
            return fn()
        except RETRYABLE:
            if attempt == retries:
                raise
            time.sleep(
                backoff(attempt, base=settings.WEATHER_RETRY_BASE_S, cap=settings.WEATHER_RETRY_CAP_S, jitter="none")
            )
    raise AssertionError("unreachable")


def breaker_state() -> dict:
    """State, code, failures and why — for /healthz, /metrics and the status route."""
    cb = breaker()
    state = cb.current_state
    info = {
        "state": state,
        "code": STATE_CODES[state],
        "consecutive_failures": cb.fail_counter,
        "fail_max": cb.fail_max,
        "reset_timeout_s": cb.reset_timeout,
        "since": datetime.fromtimestamp(_tracker.changed_at, UTC).isoformat().replace("+00:00", "Z"),
    }
    if state != pybreaker.STATE_CLOSED or cb.fail_counter:
        info["last_error"] = _tracker.last_error
    if state == pybreaker.STATE_OPEN:
        info["retry_in_s"] = round(_retry_in(cb), 1)
    return info


def trial_due() -> bool:
    """The breaker is open but its timeout has passed: the next call is a trial."""
    cb = breaker()
    return cb.current_state == pybreaker.STATE_OPEN and _retry_in(cb) == 0
