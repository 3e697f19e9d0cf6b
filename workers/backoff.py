"""Capped exponential backoff with jitter (full: uniform(0, c); equal: uniform(c/2, c)), c = min(cap, base * 2**attempt)."""

import random


def backoff(attempt: int, *, base: float, cap: float, jitter: str = "full") -> float:
    """Capped exponential backoff with jitter (full: uniform(0, c); equal: uniform(c/2, c)), c = min(cap, base * 2**attempt)."""
    ceiling = min(cap, base * 2**attempt)
    if jitter == "full":
        return random.uniform(0, ceiling)
    if jitter == "equal":
        return random.uniform(ceiling / 2, ceiling)
    raise ValueError(f"unknown jitter {jitter!r}: 'full' or 'equal'")
