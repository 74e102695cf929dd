"""Backoff between attempts: exponential, capped, jittered, and never out of bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwire import Backoff

backoffs = st.builds(
    lambda base, factor, extra, jitter: Backoff(
        base=base, factor=factor, cap=base + extra, jitter=jitter
    ),
    base=st.floats(0, 1000, allow_nan=False),
    factor=st.floats(1, 10, allow_nan=False),
    extra=st.floats(0, 10_000, allow_nan=False),
    jitter=st.floats(0, 1, allow_nan=False),
)
attempts = st.integers(1, 5000)


@given(backoff=backoffs, attempt=attempts, seed=st.integers(0, 2**32))
def test_every_delay_lies_within_the_bounds_of_its_attempt_and_never_exceeds_the_cap(
    backoff: Backoff, attempt: int, seed: int
) -> None:
    low, high = backoff.bounds(attempt)
    delay = backoff.delay(attempt, random.Random(seed))
    assert 0 <= low <= delay <= high <= backoff.cap


@given(backoff=backoffs, attempt=attempts)
def test_bounds_never_shrink_from_one_attempt_to_the_next(backoff: Backoff, attempt: int) -> None:
    low, high = backoff.bounds(attempt)
    next_low, next_high = backoff.bounds(attempt + 1)
    assert next_low >= low
    assert next_high >= high


@given(backoff=backoffs, attempt=st.integers(1, 100))
def test_the_ceiling_grows_by_the_factor_until_it_reaches_the_cap(
    backoff: Backoff, attempt: int
) -> None:
    ceiling = backoff.ceiling(attempt)
    if ceiling < backoff.cap:
        assert ceiling == pytest.approx(backoff.base * backoff.factor ** (attempt - 1))
    else:
        assert ceiling == backoff.cap


def test_huge_attempt_numbers_neither_overflow_nor_hang() -> None:
    assert Backoff(base=1.0, factor=3.0, cap=60.0).ceiling(10**9) == 60.0
    assert Backoff(base=1e-300, factor=10.0, cap=1e300).ceiling(500) == pytest.approx(1e199)
    assert Backoff(base=0.0, factor=4.0, cap=1.0).ceiling(10**6) == 0.0


def test_the_first_retry_waits_about_base_and_later_ones_double() -> None:
    backoff = Backoff(base=1.0, factor=2.0, cap=10.0, jitter=0.5)
    assert [backoff.bounds(n) for n in (1, 2, 3, 4, 5)] == [
        (0.5, 1.0),
        (1.0, 2.0),
        (2.0, 4.0),
        (4.0, 8.0),
        (5.0, 10.0),
    ]


def test_without_jitter_the_delay_is_exactly_the_ceiling() -> None:
    backoff = Backoff(base=0.25, factor=3.0, cap=100.0, jitter=0.0)
    assert backoff.delay(3) == 0.25 * 9


def test_jitter_spreads_a_burst_of_retries_over_the_window() -> None:
    backoff = Backoff(base=10.0, cap=10.0, jitter=1.0)
    rng = random.Random(7)
    delays = {round(backoff.delay(1, rng), 3) for _ in range(100)}
    assert len(delays) > 90


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base": -1.0}, "backoff base must be >= 0, got -1.0"),
        ({"factor": 0.5}, "backoff factor must be >= 1, got 0.5"),
        ({"base": 5.0, "cap": 1.0}, "backoff cap must be >= base, got cap=1.0 base=5.0"),
        ({"jitter": 1.5}, "backoff jitter must be within [0, 1], got 1.5"),
    ],
)
def test_an_invalid_backoff_is_refused_with_expected_and_actual(
    options: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        Backoff(**options)
    assert str(caught.value) == message


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1, got 0"):
        Backoff().bounds(0)
