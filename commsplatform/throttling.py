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

A view that writes to a stream right after its throttles (`POST /event`) can have both
done in one round trip, when the counters' Redis (the cache's, CACHE_REDIS_URL) is the
stream's (REDIS_URL): `rate_window()` names a throttle's counters and limit,
workers.publish.publish_within_rates counts and checks them with the XADD, and
`settle()` takes the counts back for `wait()`. Same keys, same arithmetic, same budget
as `allow_request` in every other process.
"""

import contextlib
import logging

from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection
from redis.exceptions import RedisError
from rest_framework import throttling

from workers.connection import is_cluster_url
from workers.publish import RateWindow, WindowCount

logger = logging.getLogger(__name__)


class SlidingWindowCounterMixin:
    """Replaces SimpleRateThrottle's history list with two Redis counters."""

    rate: str | None
    num_requests: int
    duration: int
    key: str | None

    def rate_window(self, request, view) -> RateWindow | None:
        """This request's counters and limit, or None when no limit applies to it."""
        if self.rate is None:
            return None
        self.key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if self.key is None:
            return None
        window, self.into = divmod(self.timer(), self.duration)  # type: ignore[attr-defined]
        make_key = cache.make_key  # one look-up of this thread's cache
        return RateWindow(
            current_key=make_key(f"{self.key}:{int(window)}"),
            previous_key=make_key(f"{self.key}:{int(window) - 1}"),
            limit=self.num_requests,
            ttl=2 * self.duration,
            previous_share=1 - self.into / self.duration,
        )

    def settle(self, count: WindowCount) -> bool:
        """Take the counts a round trip found (for `wait()`); whether the request was allowed."""
        self.current, self.previous = count.current, count.previous
        return count.allowed

    def allow_request(self, request, view) -> bool:
        window = self.rate_window(request, view)
        if window is None:
            return True
        client = get_redis_connection("default")
        try:
            pipe = client.pipeline(transaction=False)
            pipe.incr(window.current_key)
            pipe.expire(window.current_key, window.ttl)
            pipe.get(window.previous_key)
            count, _, before = pipe.execute()
        except RedisError as exc:
            logger.warning("throttle %s not checked, Redis unavailable: %s", self.key, exc)
            return True
        self.current = count - 1  # allowed before this request, in this window
        self.previous = int(before or 0)
        if window.allows(self.current, self.previous):
            return True
        # If the DECR fails, the refusal stays counted until the window ends: errs on the strict side.
        with contextlib.suppress(RedisError):
            client.decr(window.current_key)
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


def counters_on_stream_redis() -> bool:
    """Whether the throttles' counters live on the streams' Redis (CACHE_REDIS_URL is
    REDIS_URL, a single server): then a throttle check and an XADD share one round trip.
    A Redis Cluster REDIS_URL never qualifies (the cache is a separate single Redis)."""
    cache_settings = settings.CACHES["default"]
    return (
        cache_settings["BACKEND"] == "django_redis.cache.RedisCache"
        and cache_settings["LOCATION"] == settings.REDIS_URL
        and not is_cluster_url(settings.REDIS_URL)
    )
