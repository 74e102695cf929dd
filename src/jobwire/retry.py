"""Backoff between attempts: exponential, capped, with jitter. Pure functions."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry number ``attempt`` (1 = the first retry).

    The un-jittered delay is ``base * factor ** (attempt - 1)``, capped at ``cap``; the
    actual delay is drawn uniformly from ``[(1 - jitter) * d, d]`` so that a burst of
    failures does not come back as a burst of retries, and never exceeds ``cap``.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base < 0:
            raise ValueError(f"backoff base must be >= 0, got {self.base}")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor}")
        if self.cap < self.base:
            raise ValueError(f"backoff cap must be >= base, got cap={self.cap} base={self.base}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter must be within [0, 1], got {self.jitter}")

    def ceiling(self, attempt: int) -> float:
        """The largest delay retry ``attempt`` may get."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        exponent = attempt - 1
        if self.base == 0:
            return 0.0
        # Compare logarithms before exponentiating, so that no attempt number, however
        # large, overflows (3.0 ** 648 does) or takes long (2 ** 10**9 as integers).
        if exponent * math.log(self.factor) >= math.log(self.cap) - math.log(self.base):
            return self.cap
        try:
            return min(self.cap, self.base * self.factor**exponent)
        except OverflowError:  # factor ** exponent alone is out of range; the product is not
            return min(self.cap, math.exp(math.log(self.base) + exponent * math.log(self.factor)))

    def bounds(self, attempt: int) -> tuple[float, float]:
        high = self.ceiling(attempt)
        return (1 - self.jitter) * high, high

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        low, high = self.bounds(attempt)
        draw = (rng or _rng).random()
        return low + (high - low) * draw


_rng = random.Random()
