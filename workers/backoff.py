"""The one retry delay: capped exponential backoff with jitter.

Every retry in the project waits `backoff(attempt, base=…, cap=…)` seconds, the shape of
dramatiq's `middleware/retries.py: compute_backoff`: the ceiling doubles with each attempt
(`base · 2**attempt`, `attempt` counting from 0) up to `cap`, and the delay is drawn
below it so that many clients failing together do not retry together.

- `jitter="full"` (the default): uniform(0, ceiling). The best spread; a delay may be
  close to zero.
- `jitter="equal"`: uniform(ceiling / 2, ceiling). At least half the ceiling: for retries
  that must not come back at once (an SMTP server that answered 4xx).
- `jitter="none"`: the ceiling itself. For a single waiter whose delay is reported or
  asserted (a web request retrying its own Redis call, a pause shown in a log line).
"""

import random
from typing import Literal

Jitter = Literal["full", "equal", "none"]


def backoff_ceiling(attempt: int, *, base: float, cap: float) -> float:
    """min(cap, base · 2**attempt): the largest delay `backoff` can return."""
    if attempt < 0:
        raise ValueError(f"attempt counts from 0, got {attempt}")
    # 2**attempt overflows a float past ~1024; the cap is reached long before.
    return min(cap, base * 2 ** min(attempt, 64))


def backoff(attempt: int, *, base: float, cap: float, jitter: Jitter = "full") -> float:
    """Seconds to wait before retry number `attempt` (0 for the first retry)."""
    ceiling = backoff_ceiling(attempt, base=base, cap=cap)
    if jitter == "full":
        return random.uniform(0, ceiling)
    if jitter == "equal":
        return random.uniform(ceiling / 2, ceiling)
    if jitter == "none":
        return ceiling
    raise ValueError(f"unknown jitter {jitter!r}; use 'full', 'equal' or 'none'")
