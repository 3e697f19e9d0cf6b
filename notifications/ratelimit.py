"""The process-wide cap on messages per second (EMAIL_RATE_LIMIT_PER_S): one token bucket
(the `token-bucket` package: thread-safe, no dependencies) shared by the sender threads."""

import threading
import time

import token_bucket
from django.conf import settings

_limiter_lock = threading.Lock()
_limiter: tuple[float, token_bucket.Limiter] | None = None


def _rate_limiter() -> token_bucket.Limiter | None:
    global _limiter
    rate = settings.EMAIL_RATE_LIMIT_PER_S
    if rate <= 0:
        return None
    with _limiter_lock:
        if _limiter is None or _limiter[0] != rate:
            burst = settings.EMAIL_RATE_BURST or max(1, int(rate))
            _limiter = (rate, token_bucket.Limiter(rate, burst, token_bucket.MemoryStorage()))
        return _limiter[1]


def rate_limit_wait() -> None:
    """Block until the process-wide token bucket grants one message."""
    limiter = _rate_limiter()
    if limiter is None:
        return
    while not limiter.consume(b"smtp"):
        time.sleep(min(0.05, 1 / settings.EMAIL_RATE_LIMIT_PER_S))
