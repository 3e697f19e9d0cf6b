"""One cap on messages per second for the whole platform (EMAIL_RATE_LIMIT_PER_S): every
sender thread of every process and replica reserves its slot from one GCRA state in Redis.

GCRA (the generic cell rate algorithm, as in redis-cell and dramatiq's rate limiters'
shape) keeps one number per limit: the theoretical arrival time `tat` of the next
message. A reservation takes the slot `max(now, tat - burst tolerance)` and moves `tat`
on by one emission interval, in one Lua script (atomic; the clock is Redis' own, so the
senders' clocks do not matter); the caller sleeps until its slot. Reserving rather than
asking "may I?" in a loop means no polling and no lost wake-ups: n callers get n
consecutive slots.

Written here rather than taken from a library: dramatiq's limiters are bound to its
backends and count in windows (a window-edge burst of 2× the rate), and the limiter
packages on PyPI either keep state per process or poll; this is one short script.
"""

import logging
import time

import redis
from django.conf import settings

from workers.connection import get_redis

logger = logging.getLogger(__name__)

# KEYS[1]: the limit's state. ARGV: emission interval (µs), burst tolerance (µs).
# Returns how many µs the caller waits for its slot (0: now).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1000)
return wait
"""


_reserve = redis.Redis().register_script(_RESERVE)  # called with the live client below


def rate_limit_key(name: str | None = None) -> str:
    """The Redis key of a limit (default EMAIL_RATE_LIMIT_KEY, e.g. one per relay). The
    braces are a Redis Cluster hash tag, so a limit lives in one slot."""
    return f"{{email-rate:{name or settings.EMAIL_RATE_LIMIT_KEY}}}"


def rate_limit_wait(*, name: str | None = None, rate: float | None = None, burst: int | None = None) -> float:
    """Block until the shared limit grants one message; return the seconds waited.

    `name`/`rate`/`burst` default to EMAIL_RATE_LIMIT_KEY / EMAIL_RATE_LIMIT_PER_S /
    EMAIL_RATE_BURST (0: one second's worth). A rate of 0 is no limit. While Redis does
    not answer, the caller waits and asks again: without the shared state no sender may
    exceed the platform's rate (and without Redis there is nothing to send anyway).
    """
    rate = settings.EMAIL_RATE_LIMIT_PER_S if rate is None else rate
    if rate <= 0:
        return 0.0
    burst = burst or settings.EMAIL_RATE_BURST or max(1, int(rate))
    interval_us = 1_000_000 / rate
    tolerance_us = interval_us * (burst - 1)
    key = rate_limit_key(name)
    waited = 0.0
    while True:
        try:
            wait_us = _reserve(keys=[key], args=[interval_us, tolerance_us], client=get_redis())
            break
        except redis.RedisError as exc:
            logger.warning("rate limit %s: Redis did not answer (%s); waiting", key, exc)
            time.sleep(0.5)
            waited += 0.5
    if wait_us:
        time.sleep(int(wait_us) / 1_000_000)
        waited += int(wait_us) / 1_000_000
    return waited
