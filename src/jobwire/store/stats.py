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

:func:`tally` gives one transition's increments; the engines add up the
increments of a whole transaction (of a whole group commit on SQLite) before writing,
so a batch of a thousand finished jobs costs a handful of row updates.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from jobwire.model import LEASE_EXPIRED, Change, EventType, Job, State

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
        if data.get("lost") is True:
            return True
        if event.type in (EventType.RETRYING, EventType.FAILED):
            error = data.get("error")
            if isinstance(error, Mapping) and error.get("type") == LEASE_EXPIRED:
                return True
        elif event.type is EventType.CANCELLED and str(data.get("reason", "")).startswith(
            "lease expired"
        ):
            return True
    return False


# The counters of one (queue, job name) while a transaction's increments are summed:
# a flat list indexed by these positions, so that summing a change is a handful of list
# updates (this runs for every job a group commit changes).
_KEYS: tuple[str, ...] = (
    *(f"state:{state.value}" for state in State),
    *(f"total:{counter}" for counter in COUNTERS),
    *(f"wait:{i}" for i in range(len(BUCKETS) + 1)),
    "wait:sum",
    *(f"run:{i}" for i in range(len(BUCKETS) + 1)),
    "run:sum",
)
_AT = {key: i for i, key in enumerate(_KEYS)}
_STATE_AT = {state: _AT[f"state:{state.value}"] for state in State}
_EVENT_AT = {event: _AT[f"total:{counter}"] for event, counter in _EVENT_COUNTER.items()}
_ENQUEUED_AT = _AT["total:enqueued"]
_EXPIRED_AT = _AT["total:expired"]
_WAIT_AT, _WAIT_SUM_AT = _AT["wait:0"], _AT["wait:sum"]
_RUN_AT, _RUN_SUM_AT = _AT["run:0"], _AT["run:sum"]
_RUNNING = State.RUNNING
_STARTED = EventType.STARTED


def _add(counters: list[float], before: Job | None, change: Change) -> None:
    """Add one transition's increments to the counters of its queue and job name."""
    after = change.job
    state = after.state
    if before is None:
        counters[_STATE_AT[state]] += 1
        if change.events:
            counters[_ENQUEUED_AT] += 1
    elif before.state is not state:
        counters[_STATE_AT[before.state]] -= 1
        counters[_STATE_AT[state]] += 1
    events = change.events
    if not events:
        return
    for event in events:
        at = _EVENT_AT.get(event.type)
        if at is None:
            continue
        counters[at] += 1
        if event.type is _STARTED and before is not None:
            waited = event.at - before.scheduled_at
            waited = waited if waited > 0.0 else 0.0
            counters[_WAIT_AT + bisect.bisect_left(BUCKETS, waited)] += 1
            counters[_WAIT_SUM_AT] += waited
    if (
        before is not None
        and before.state is _RUNNING
        and state is not _RUNNING
        and before.started_at is not None
    ):
        ran = events[-1].at - before.started_at
        ran = ran if ran > 0.0 else 0.0
        counters[_RUN_AT + bisect.bisect_left(BUCKETS, ran)] += 1
        counters[_RUN_SUM_AT] += ran
        if after.state is not State.SUCCEEDED and _lease_expired(change):
            counters[_EXPIRED_AT] += 1


def tally(before: Job | None, change: Change) -> dict[str, float]:
    """The increments one transition makes, by key; ``before`` is None for a new job."""
    counters = [0.0] * len(_KEYS)
    _add(counters, before, change)
    return {key: value for key, value in zip(_KEYS, counters, strict=True) if value}


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
        groups: dict[tuple[str, str], list[float]] = {}
        width = len(_KEYS)
        for before, change in self.entries:
            job = change.job
            group = (job.queue, job.job)
            counters = groups.get(group)
            if counters is None:
                counters = groups[group] = [0.0] * width
            _add(counters, before, change)
        return {
            (queue, name, key): value
            for (queue, name), counters in groups.items()
            for key, value in zip(_KEYS, counters, strict=True)
            if value
        }

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


StatRow = tuple[str, str, str, float]  # (queue, job name, key, value) as stored

# Webhook outcomes are counted under no queue and no job name: a delivery attempt is
# recorded by its id, and looking up its job's queue would cost a read per attempt.
WEBHOOKS: tuple[str, str] = ("", "")
WEBHOOK_COUNTERS = ("delivered", "failures")


def webhook_key(ok: bool) -> StatKey:
    """The counter one recorded delivery attempt adds to."""
    return (*WEBHOOKS, "webhook:delivered" if ok else "webhook:failures")


def webhook_totals(rows: Iterable[StatRow]) -> dict[str, int]:
    """Delivered webhooks and failed delivery attempts, over every job."""
    totals = dict.fromkeys(WEBHOOK_COUNTERS, 0)
    for queue, name, key, value in rows:
        if (queue, name) == WEBHOOKS and key.startswith("webhook:"):
            totals[key.removeprefix("webhook:")] += int(value)
    return totals


def build(rows: Iterable[StatRow]) -> list[JobStats]:
    """:class:`JobStats` per (queue, job name) from stored ``(queue, job, key, value)``
    rows (several rows with the same key are summed: sharded counters)."""
    grouped: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for queue, name, key, value in rows:
        if (queue, name) != WEBHOOKS:
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
