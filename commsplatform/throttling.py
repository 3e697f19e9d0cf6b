"""Request rates counted in Redis with one round trip and constant work per request.

DRF's `SimpleRateThrottle` keeps the timestamp of every request in the window as one
cached list that it reads, trims and writes back whole on each call: at the per-token
rate of 100000/minute a busy producer's list holds tens of thousands of floats, pickled
and sent to Redis twice per request. These throttles keep two counters per client
instead (this window's and the last one's) and estimate the rate over the sliding
window as Cloudflare describes it: `previous × (share of the window not yet elapsed) +
current`. That assumes the last window's requests were spread evenly; the estimate is
rounded up, which errs on the strict side (a burst at the very end of one window can
still be followed by a few more requests than the rate early in the next).

Counted: allowed requests only (a refused one is taken back), as DRF counts them. When
Redis cannot be reached the request is let through, like the cache-based throttles
with DJANGO_REDIS_IGNORE_EXCEPTIONS: an outage of the counter store must not become an
outage of the API. Written by hand: no maintained package offers a DRF throttle on
Redis counters.
"""

import contextlib
import logging
import math

from django.core.cache import cache
from django_redis import get_redis_connection
from redis.exceptions import RedisError
from rest_framework import throttling

logger = logging.getLogger(__name__)


class SlidingWindowCounterMixin:
    """Replaces SimpleRateThrottle's history list with two Redis counters."""

    rate: str | None
    num_requests: int
    duration: int
    key: str | None

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if self.key is None:
            return True
        window, self.into = divmod(self.timer(), self.duration)  # type: ignore[attr-defined]
        current = cache.make_key(f"{self.key}:{int(window)}")
        previous = cache.make_key(f"{self.key}:{int(window) - 1}")
        client = get_redis_connection("default")
        try:
            pipe = client.pipeline(transaction=False)
            pipe.incr(current)
            pipe.expire(current, 2 * self.duration)
            pipe.get(previous)
            count, _, before = pipe.execute()
        except RedisError as exc:
            logger.warning("throttle %s not checked, Redis unavailable: %s", self.key, exc)
            return True
        self.current = count - 1  # allowed before this request, in this window
        self.previous = int(before or 0)
        if self.current + math.ceil(self.previous * (1 - self.into / self.duration)) < self.num_requests:
            return True
        # If the DECR fails, the refusal stays counted until the window ends: errs on the strict side.
        with contextlib.suppress(RedisError):
            client.decr(current)
        return False

    def wait(self) -> float:
        """Seconds until the estimate drops below the rate (Retry-After; less than two windows).

        `ceil(n × share) + current < rate` holds once `n × share ≤ rate - current - 1`.
        """
        allowed = self.num_requests - 1
        if self.current <= allowed and self.previous:
            # within this window, as the last window's share decays
            seconds = self.duration * (1 - (allowed - self.current) / self.previous) - self.into
        else:
            # in the next window, as this window's count decays in its turn
            seconds = (self.duration - self.into) + self.duration * (1 - allowed / max(self.current, 1))
        return max(1.0, seconds)


class AnonRateThrottle(SlidingWindowCounterMixin, throttling.AnonRateThrottle):
    """Anonymous clients by IP (scope `anon`)."""


class UserRateThrottle(SlidingWindowCounterMixin, throttling.UserRateThrottle):
    """Each token's user, or an anonymous client's IP (scope `user`)."""
