"""Rate limits held across every worker through the store: what a limit is, how one is
written (``"10/s"``), and the verdict the stores apply (a sliding window of starts and
a set of running holders whose permits expire with their lease).

A permit is taken under every limit of a job at once (its job name's, its queue's), all
or none, in one atomic step of the store. The verdict is plain code so that memory,
SQLite and PostgreSQL decide alike; ``store/lua/redis.lua`` (``acquire_permit``)
computes the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from jobwire.errors import JobDefinitionError

# A refusal by the concurrency limit cannot say when a permit frees (a job ends when it
# ends): the worker asks again this much later, or when the earliest holder expires.
CONCURRENCY_RECHECK_SECONDS = 0.25

_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([smhd])\s*$")


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit under a store key (``job:NAME`` or ``queue:NAME``): at most ``rate``
    starts in any ``period`` seconds, and at most ``concurrency`` holders at once."""

    key: str
    rate: int | None = None
    period: float = 1.0
    concurrency: int | None = None


def parse_rate(
    where: str, rate: str | tuple[int, float] | None, field: str = "rate"
) -> tuple[int, float] | None:
    """``"10/s"``, ``"100/m"``, ``"5/2s"``, ``"1000/h"``, ``"1/d"`` or ``(10, 1.0)`` →
    (count, period seconds)."""
    if rate is None:
        return None
    if isinstance(rate, str):
        match = _RATE.match(rate)
        if match is None:
            raise JobDefinitionError(
                f"{where}: {field} must look like '10/s', '100/m', '5/2s' or (10, 1.0), "
                f"got {rate!r}"
            )
        count, scale, unit = int(match[1]), match[2], match[3]
        period = (float(scale) if scale else 1.0) * _PERIODS[unit]
    elif isinstance(rate, tuple) and len(rate) == 2:
        count, period = rate  # type: ignore[assignment]
        if isinstance(count, bool) or not isinstance(count, int):
            raise JobDefinitionError(f"{where}: {field} count must be an integer, got {count!r}")
        if isinstance(period, bool) or not isinstance(period, int | float):
            raise JobDefinitionError(f"{where}: {field} period must be seconds, got {period!r}")
        period = float(period)
    else:
        raise JobDefinitionError(
            f"{where}: {field} must look like '10/s' or (10, 1.0), got {rate!r}"
        )
    if count < 1 or period <= 0:
        raise JobDefinitionError(
            f"{where}: {field} needs at least 1 start in a period > 0 s, got {rate!r}"
        )
    return count, period


def check_concurrency(where: str, concurrency: int | None) -> int | None:
    if concurrency is None:
        return None
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise JobDefinitionError(
            f"{where}: concurrency must be an integer >= 1, got {concurrency!r}"
        )
    return concurrency


def make_limit(key: str, rate: tuple[int, float] | None, concurrency: int | None) -> Limit | None:
    if rate is None and concurrency is None:
        return None
    count, period = rate if rate is not None else (None, 1.0)
    return Limit(key=key, rate=count, period=period, concurrency=concurrency)


def job_key(name: str) -> str:
    return f"job:{name}"


def queue_key(name: str) -> str:
    return f"queue:{name}"


def refusal(
    limit: Limit, starts: Sequence[float], holders: Sequence[float], now: float
) -> float | None:
    """When ``limit`` refuses a new permit at ``now``: None if it grants one, else the
    earliest time worth asking again.

    ``starts``: the times of the starts it granted within ``(now - period, now]``,
    oldest first; ``holders``: the expiry of each live holder (expiry > now).
    """
    retry_at: float | None = None
    if limit.rate is not None and len(starts) >= limit.rate:
        # The window frees a place when its oldest start beyond the last rate-1 leaves.
        retry_at = starts[len(starts) - limit.rate] + limit.period
    if limit.concurrency is not None and len(holders) >= limit.concurrency:
        recheck = min(now + CONCURRENCY_RECHECK_SECONDS, min(holders))
        retry_at = recheck if retry_at is None else max(retry_at, recheck)
    return retry_at


def combined(refusals: Sequence[float | None]) -> float | None:
    """All or none: refused if any limit refuses, until the last of their times."""
    times = [t for t in refusals if t is not None]
    return max(times) if times else None
