"""Job statistics kept by every store: cheap to read however many jobs are stored.

Each store keeps one small table (a hash on Redis) of numbers keyed by
``(queue, job name, key)``, and adds to it in the same transaction as the transitions it
counts, so the numbers are exact and survive restarts. Reading them costs a scan of that
table — a few rows per queue and job name — never of the jobs, so ``Store.counts()``
stays cheap with millions of finished jobs in the store.

The keys:

- ``state:<state>`` — how many jobs are in that state now (the prune of finished jobs
  takes them off again);
- ``total:<counter>`` — only ever grows: ``enqueued``, ``started``, ``succeeded``,
  ``failed``, ``retried``, ``cancelled``, ``expired`` (a lease ran out);
- ``wait:<i>`` and ``wait:sum`` — a histogram of how long attempts waited from when they
  were due (submit, or the end of a delay or backoff) to their start; ``run:<i>`` and
  ``run:sum`` the same for how long attempts ran. ``<i>`` indexes :data:`BUCKETS`
  (``len(BUCKETS)`` is the overflow bucket); buckets are not cumulative here.

:func:`tally` turns one transition into these increments; the engines add up the
increments of a whole transaction (of a whole group commit on SQLite) before writing,
so a batch of a thousand finished jobs costs a handful of row updates.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from jobwire.model import Change, EventType, Job, State

# Upper bounds, in seconds, of the wait and run time histograms' buckets.
BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, 3600.0,
)  # fmt: skip

COUNTERS = ("enqueued", "started", "succeeded", "failed", "retried", "cancelled", "expired")

_EVENT_COUNTER = {
    EventType.STARTED: "started",
    EventType.SUCCEEDED: "succeeded",
    EventType.FAILED: "failed",
    EventType.RETRYING: "retried",
    EventType.CANCELLED: "cancelled",
}

StatKey = tuple[str, str, str]  # (queue, job name, key)


def bucket(seconds: float) -> int:
    """The index of the histogram bucket that holds ``seconds``."""
    return bisect.bisect_left(BUCKETS, seconds)


def _lease_expired(change: Change) -> bool:
    """Whether this change ends an attempt because its lease ran out (model.expire)."""
    for event in change.events:
        data = event.data
        if event.type in (EventType.RETRYING, EventType.FAILED):
            error = data.get("error")
            if isinstance(error, Mapping) and error.get("type") == "LeaseExpired":
                return True
        elif event.type is EventType.CANCELLED and str(data.get("reason", "")).startswith(
            "lease expired"
        ):
            return True
    return False


def tally(before: Job | None, change: Change) -> list[tuple[StatKey, float]]:
    """The increments one transition makes; ``before`` is None for a new job."""
    after = change.job
    queue, name = after.queue, after.job
    out: list[tuple[StatKey, float]] = []
    if before is None or before.state is not after.state:
        if before is not None:
            out.append(((queue, name, f"state:{before.state.value}"), -1))
        out.append(((queue, name, f"state:{after.state.value}"), 1))
    if not change.events:
        return out
    if before is None:
        out.append(((queue, name, "total:enqueued"), 1))
    for event in change.events:
        counter = _EVENT_COUNTER.get(event.type)
        if counter is None:
            continue
        out.append(((queue, name, f"total:{counter}"), 1))
        if event.type is EventType.STARTED and before is not None:
            waited = max(0.0, event.at - before.scheduled_at)
            out.append(((queue, name, f"wait:{bucket(waited)}"), 1))
            out.append(((queue, name, "wait:sum"), waited))
    if (
        before is not None
        and before.state is State.RUNNING
        and after.state is not State.RUNNING
        and before.started_at is not None
    ):
        ran = max(0.0, change.events[-1].at - before.started_at)
        out.append(((queue, name, f"run:{bucket(ran)}"), 1))
        out.append(((queue, name, "run:sum"), ran))
        if _lease_expired(change):
            out.append(((queue, name, "total:expired"), 1))
    return out


@dataclass
class Tally:
    """Increments gathered over one transaction, to be written together."""

    entries: list[tuple[Job | None, Change]] = field(default_factory=list)

    def add(self, before: Job | None, change: Change) -> None:
        self.entries.append((before, change))

    def mark(self) -> int:
        return len(self.entries)

    def undo_to(self, mark: int) -> None:
        """Forget what was added after ``mark`` (its operation was rolled back)."""
        del self.entries[mark:]

    def totals(self) -> dict[StatKey, float]:
        """The summed increments, zeros left out."""
        sums: dict[StatKey, float] = defaultdict(float)
        for before, change in self.entries:
            for key, delta in tally(before, change):
                sums[key] += delta
        return {key: value for key, value in sums.items() if value}

    def clear(self) -> None:
        self.entries.clear()


@dataclass(frozen=True, slots=True)
class Histogram:
    """Non-cumulative bucket counts (one per :data:`BUCKETS` bound, then overflow) and
    the sum of the observed values."""

    buckets: tuple[int, ...]
    sum: float

    @property
    def count(self) -> int:
        return sum(self.buckets)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations ≤ bound)`` pairs, ending with ``+inf``."""
        running, out = 0, []
        for bound, n in zip((*BUCKETS, float("inf")), self.buckets, strict=True):
            running += n
            out.append((bound, running))
        return out


@dataclass(frozen=True, slots=True)
class JobStats:
    """The statistics of one job name in one queue."""

    queue: str
    job: str
    states: dict[State, int]
    totals: dict[str, int]
    wait: Histogram
    run: Histogram


def _histogram(values: Mapping[str, float], prefix: str) -> Histogram:
    counts = tuple(int(values.get(f"{prefix}:{i}", 0)) for i in range(len(BUCKETS) + 1))
    return Histogram(counts, float(values.get(f"{prefix}:sum", 0.0)))


def build(rows: Iterable[tuple[str, str, str, float]]) -> list[JobStats]:
    """:class:`JobStats` per (queue, job name) from stored ``(queue, job, key, value)``
    rows (several rows with the same key are summed: sharded counters)."""
    grouped: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for queue, name, key, value in rows:
        grouped[(queue, name)][key] += value
    out = []
    for (queue, name), values in sorted(grouped.items()):
        states = {state: int(values.get(f"state:{state.value}", 0)) for state in State}
        totals = {c: int(values.get(f"total:{c}", 0)) for c in COUNTERS}
        out.append(
            JobStats(
                queue,
                name,
                states,
                totals,
                _histogram(values, "wait"),
                _histogram(values, "run"),
            )
        )
    return out


def counts_by_queue(stats: Iterable[JobStats]) -> dict[str, dict[State, int]]:
    """Jobs per queue and state, every state present (zero when none)."""
    out: dict[str, dict[State, int]] = {}
    for entry in stats:
        per_state = out.setdefault(entry.queue, dict.fromkeys(State, 0))
        for state, n in entry.states.items():
            per_state[state] += n
    return out
