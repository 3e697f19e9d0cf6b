import contextlib

from commsplatform.health import CheckResult
from workers.connection import get_redis

from .replies import get_router
from .resilience import RETRYABLE, CircuitOpen, breaker_state, guarded, trial_due
from .selectors import redis_round_trip

# A constant: mypy cannot check a starred tuple written in an `except` clause.
_TRIAL_ERRORS: tuple[type[BaseException], ...] = (CircuitOpen, *RETRYABLE)


def check_weather_circuit() -> CheckResult:
    """/healthz: the Redis circuit breaker of this process (failing while open), the Redis
    round trip and the requests waiting for a reply here.

    When the open period is over, the probe itself makes the trial call (a PING through
    the breaker), so a recovered Redis closes the breaker even before the next request.
    """
    if trial_due():
        with contextlib.suppress(*_TRIAL_ERRORS):
            guarded(lambda: get_redis().ping())
    circuit = breaker_state()
    details = {
        "circuit": circuit["state"],
        "consecutive_failures": circuit["consecutive_failures"],
        "pending_requests": get_router().pending(),
        **redis_round_trip(),
    }
    if circuit["state"] == "open":
        details["reason"] = (
            f"Redis circuit open after {circuit['fail_max']} consecutive failures "
            f"(last error: {circuit.get('last_error')}); requests get 503 for {circuit['retry_in_s']} s more"
        )
    elif circuit.get("last_error"):
        details["last_error"] = circuit["last_error"]
    return CheckResult("weather", circuit["state"] != "open", details)
