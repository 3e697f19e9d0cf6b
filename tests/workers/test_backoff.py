import random

import pytest

from workers.backoff import backoff, backoff_ceiling


def test_the_ceiling_doubles_per_attempt_up_to_the_cap():
    # given base 0.5 and cap 3, when the ceiling of attempts 0..4 is taken
    ceilings = [backoff_ceiling(attempt, base=0.5, cap=3) for attempt in range(5)]
    # then it doubles until the cap holds it
    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_huge_attempt_number_is_the_cap_not_an_overflow():
    assert backoff_ceiling(5000, base=0.1, cap=30) == 30
    assert backoff(5000, base=0.1, cap=30, jitter="none") == 30


def test_full_jitter_is_drawn_between_zero_and_the_ceiling():
    random.seed(7)
    delays = [backoff(3, base=1, cap=5) for _ in range(500)]
    assert all(0 <= d <= 5 for d in delays)
    assert min(delays) < 1  # reaches below half the ceiling


def test_equal_jitter_keeps_at_least_half_the_ceiling():
    random.seed(7)
    delays = [backoff(2, base=1, cap=60, jitter="equal") for _ in range(500)]
    assert all(2 <= d <= 4 for d in delays)


def test_no_jitter_is_the_ceiling():
    assert [backoff(a, base=0.05, cap=2, jitter="none") for a in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2]


def test_a_negative_attempt_or_unknown_jitter_is_refused():
    with pytest.raises(ValueError, match="attempt counts from 0"):
        backoff(-1, base=1, cap=2)
    with pytest.raises(ValueError, match="unknown jitter"):
        backoff(0, base=1, cap=2, jitter="half")  # type: ignore[arg-type]
