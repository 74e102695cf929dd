"""What the dashboard reads about jobs, computed from what every store keeps.

Pure functions over values a store returns: the attempts of a job from its event log,
and the figures of the last hour from the timings of the jobs that finished in it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from jobwire.model import LEASE_EXPIRED, Event, EventType, State

# A retry is enqueued under this idempotency key (scoped to the original's owner): a
# double-click makes one new job, and the key finds the retry from the original.
RETRY_KEY_PREFIX = "jobwire:retry-of:"


def retry_key(job_id: str) -> str:
    return RETRY_KEY_PREFIX + job_id


class Timing(NamedTuple):
    """When a terminal job was scheduled, last started and finished (a tuple: an hour of
    finished jobs is thousands of these, made and read on each overview)."""

    queue: str
    state: State
    scheduled_at: float
    started_at: float | None
    finished_at: float


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a job, read from its log."""

    number: int
    worker: str | None
    started_at: float
    ended_at: float | None = None
    outcome: str | None = None  # succeeded, failed, retrying, cancelled, released, lost
    error: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "worker": self.worker,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "error": self.error,
        }


def attempts_from(events: Iterable[Event]) -> list[Attempt]:
    """Every attempt in the log, in order; the last one open while the job runs.

    A ``started`` event opens an attempt; the next ``retrying``, terminal, or released or
    lost ``queued`` event closes it. An attempt whose lease ran out (its worker killed or
    cut off) is ``lost``: not the job's failure, and not charged to its retries.
    """
    done: list[Attempt] = []
    current: Attempt | None = None
    for event in events:
        if event.type is EventType.STARTED:
            if current is not None:  # an older log without a closing event
                done.append(current)
            number = event.data.get("attempt")
            current = Attempt(
                number=int(number) if isinstance(number, int) else len(done) + 1,
                worker=event.data.get("worker"),
                started_at=event.at,
            )
            continue
        if current is None:
            continue
        outcome = _outcome(event)
        if outcome is None:
            continue
        error = event.data.get("error")
        done.append(
            Attempt(
                current.number,
                current.worker,
                current.started_at,
                ended_at=event.at,
                outcome=outcome,
                error=error if isinstance(error, dict) else None,
            )
        )
        current = None
    if current is not None:
        done.append(current)
    return done


def _outcome(event: Event) -> str | None:
    if event.data.get("lost") is True:
        return "lost"
    error = event.data.get("error")
    if isinstance(error, dict) and error.get("type") == LEASE_EXPIRED:
        return "lost"  # an older log: a lost lease used to be charged as a failure
    if event.type is EventType.RETRYING:
        return "retrying"
    if event.type is EventType.FAILED:
        return "failed"
    if event.type in (EventType.SUCCEEDED, EventType.CANCELLED):
        return event.type.value
    if event.type is EventType.QUEUED and event.data.get("released"):
        return "released"
    return None


@dataclass(frozen=True, slots=True)
class Minute:
    start: float  # epoch seconds, a multiple of 60
    succeeded: int = 0
    failed: int = 0
    wait_p50: float | None = None
    wait_p95: float | None = None
    run_p50: float | None = None
    run_p95: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "wait_p50": self.wait_p50,
            "wait_p95": self.wait_p95,
            "run_p50": self.run_p50,
            "run_p95": self.run_p95,
        }


@dataclass(frozen=True, slots=True)
class Activity:
    """Per minute of a window ending now: jobs succeeded and failed, and the wait
    (scheduled → last start) and run (last start → end) percentiles of those jobs."""

    since: float
    until: float
    minutes: list[Minute] = field(default_factory=list)
    complete: bool = True  # False: more jobs finished than were read (the newest kept)
    overall: Minute | None = None  # the whole window as one bucket

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "complete": self.complete,
            "overall": self.overall.as_dict() if self.overall is not None else None,
            "minutes": [m.as_dict() for m in self.minutes],
        }


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    rank = max(1, math.ceil(p / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def activity_from(
    timings: Iterable[Timing], since: float, until: float, complete: bool
) -> Activity:
    first = math.floor(since / 60) * 60
    size = int((math.floor(until / 60) * 60 - first) // 60) + 1
    succeeded, failed = [0] * size, [0] * size
    waits: list[list[float]] = [[] for _ in range(size)]
    runs: list[list[float]] = [[] for _ in range(size)]
    ok, bad = State.SUCCEEDED, State.FAILED
    for _queue, state, scheduled, started, finished in timings:
        if (state is not ok and state is not bad) or finished < since:
            continue
        i = int((finished - first) // 60)
        if not 0 <= i < size:
            continue
        if state is ok:
            succeeded[i] += 1
        else:
            failed[i] += 1
        if started is not None:
            waits[i].append(max(0.0, started - scheduled))
            runs[i].append(max(0.0, finished - started))
    minutes = [
        _minute(first + 60 * i, [succeeded[i], failed[i]], waits[i], runs[i]) for i in range(size)
    ]
    every_wait = [w for bucket in waits for w in bucket]
    every_run = [r for bucket in runs for r in bucket]
    overall = _minute(first, [sum(succeeded), sum(failed)], every_wait, every_run)
    return Activity(since, until, minutes, complete, overall)


def _minute(start: float, counts: list[int], waits: list[float], runs: list[float]) -> Minute:
    waits.sort()
    runs.sort()
    return Minute(
        start,
        counts[0],
        counts[1],
        percentile(waits, 50),
        percentile(waits, 95),
        percentile(runs, 50),
        percentile(runs, 95),
    )
