"""Jobs, their events, and the transitions between states: the only rules.

A job is a record (its current state) plus an append-only log of events numbered
1, 2, 3 … per job. Every function here takes the record as it is now and returns the
record as it must become together with the events that say why; a store applies both in
one transaction, and only where the claim token it was given is still current.

Who moves a job out of each state:

=========== ======================================================================
queued      a worker's claim (→ running); a cancel request (→ cancelled); the
            expirer once its ``expires_at`` has passed (→ cancelled, reason
            ``expired``)
running     its worker: finish (→ succeeded), fail (→ queued to retry, charged or
            not, or failed),
            release on graceful shutdown (→ queued, attempt not charged),
            mark_cancelled (→ cancelled; reason ``expired`` when it was claimed
            past its expiry, before its code ran); the reaper when the lease expires
            (→ queued without charging the attempt, or failed once the job has
            lost its worker ``max_crashes`` times); a job whose cancel was
            requested is never queued again: a retry, a release or an expiry ends
            it cancelled
succeeded   nobody: terminal
failed      nobody: terminal
cancelled   nobody: terminal
=========== ======================================================================
"""

from __future__ import annotations

import dataclasses
import json
import operator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from typing_extensions import dataclass_transform

from jobwire.errors import AlreadyTerminal, InvalidTransition, StaleClaim

JSON = Any

# A lost lease (the worker killed, or cut off from the store) is not the job's fault and
# does not spend its retries; a job that loses its worker this many times is taken for a
# poison job (one that kills the process running it) and fails. Kept in a job's options
# only when it differs from the default, so most jobs carry no options at all.
DEFAULT_MAX_CRASHES = 3
MAX_CRASHES_OPTION = "max_crashes"
LEASE_EXPIRED = "LeaseExpired"  # the error of one lost attempt
# Jobs lost together (one worker's, when it died) are due again spread over a window that
# doubles with each crash, so that the innocent ones seldom run beside the job that
# killed their worker a second and a third time, and are not charged its crash budget.
CRASH_SPREAD_SECONDS = 1.0
CRASH_SPREAD_CAP_SECONDS = 30.0
CRASH_BUDGET_SPENT = "CrashBudgetExhausted"  # the error of a job failed for its crashes

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def _record(cls: type[T]) -> type[T]:
    """A frozen dataclass for type checkers, a plain slotted one at run time.

    Jobs and events are immutable values: mypy (strict, in CI) refuses any assignment
    to their fields as for any frozen dataclass. At run time they are built without
    frozen's guard, whose ``__init__`` goes through ``object.__setattr__`` once per
    field: ten times the cost of building a Job, and one job's life builds several.
    """
    return dataclass(slots=True)(cls)


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})


class EventType(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    OUTPUT = "output"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_EVENTS


TERMINAL_EVENTS = frozenset({EventType.SUCCEEDED, EventType.FAILED, EventType.CANCELLED})

# Which event type records a move into each state.
STATE_EVENT = {
    State.QUEUED: EventType.QUEUED,
    State.RUNNING: EventType.STARTED,
    State.SUCCEEDED: EventType.SUCCEEDED,
    State.FAILED: EventType.FAILED,
    State.CANCELLED: EventType.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Progress:
    current: float
    total: float | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"current": self.current, "total": self.total, "message": self.message}


def iso_time(at: float) -> str:
    """Epoch seconds as ISO 8601 in UTC, the form of the job view's timestamps."""
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


@_record
class Event:
    job_id: str
    seq: int
    type: EventType
    data: dict[str, JSON]
    at: float  # epoch seconds
    cursor: int = 0  # the store-wide position, for streams over many jobs

    def as_dict(self) -> dict[str, Any]:
        """The event as every channel shows it (the schema is ``jobwire.api.events``)."""
        return {
            "job_id": self.job_id,
            "seq": self.seq,
            "type": self.type.value,
            "data": self.data,
            "at": self.at,
            "time": iso_time(self.at),
        }


@_record
class EventDraft:
    """An event before the store has numbered it."""

    type: EventType
    data: dict[str, JSON] = field(default_factory=dict)


@_record
class Job:
    id: str
    job: str
    args: dict[str, JSON]
    queue: str = "default"
    state: State = State.QUEUED
    owner: str = "anonymous"
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 1
    timeout: float | None = None
    created_at: float = 0.0
    scheduled_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    progress: Progress | None = None
    result: JSON = None
    error: dict[str, JSON] | None = None
    lease_expires_at: float | None = None
    claim_token: str | None = None
    worker_id: str | None = None
    cancel_requested: bool = False
    last_seq: int = 0
    idempotency_key: str | None = None
    options: dict[str, JSON] = field(default_factory=dict)
    crashes: int = 0  # leases lost while it ran: its worker killed or cut off

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def max_crashes(self) -> int:
        """The crash budget: lost leases after which the job fails instead of running
        again (its ``max_crashes`` option, else the default)."""
        value = self.options.get(MAX_CRASHES_OPTION) if self.options else None
        return value if isinstance(value, int) and value >= 1 else DEFAULT_MAX_CRASHES


@_record
class Change:
    """The outcome of a transition: the job as it must be stored, and its new events."""

    job: Job
    events: tuple[Event, ...]
    # The fields the transition set (some perhaps to their old value), so that a store
    # compares only those; empty means "compare every field".
    fields: tuple[str, ...] = ()


_JOB_FIELDS = tuple(f.name for f in dataclasses.fields(Job))
_JOB_INDEX = {name: i for i, name in enumerate(_JOB_FIELDS)}
_job_values = operator.attrgetter(*_JOB_FIELDS)


def evolve(job: Job, **changes: Any) -> Job:
    """``dataclasses.replace`` for Job, several times faster: it is on every hot path."""
    return _evolved(job, changes)


def _evolved(job: Job, changes: dict[str, Any]) -> Job:
    values = list(_job_values(job))
    for name, value in changes.items():
        values[_JOB_INDEX[name]] = value
    return Job(*values)


class _Fields:
    """Some of a job's fields, set together: the hottest transitions (a claim, a success)
    copy a job through these instead of naming each field on every call."""

    __slots__ = ("_at", "names")

    def __init__(self, *names: str) -> None:
        self.names = names
        self._at = tuple(_JOB_INDEX[name] for name in names)

    def set(self, job: Job, *values: Any) -> Job:
        copied = list(_job_values(job))
        for at, value in zip(self._at, values, strict=True):
            copied[at] = value
        return Job(*copied)


def _change(job: Job, now: float, *drafts: EventDraft, **fields: Any) -> Change:
    seq = job.last_seq
    events = []
    for draft in drafts:
        seq += 1
        events.append(Event(job.id, seq, draft.type, draft.data, now))
    if events:
        fields["last_seq"] = seq
    if not fields:
        return Change(job, tuple(events))
    return Change(_evolved(job, fields), tuple(events), tuple(fields))


def _require_claim(job: Job, token: str, action: str) -> None:
    if job.state is not State.RUNNING or job.claim_token != token:
        if job.claim_token != token:
            raise StaleClaim(job.id)
        raise InvalidTransition(job.id, job.state.value, action)


_RELEASED = {"lease_expires_at": None, "claim_token": None, "worker_id": None}


def enqueue(job: Job, now: float) -> Change:
    """A new job: numbered event 1 is always ``queued``."""
    if job.last_seq != 0:
        raise InvalidTransition(job.id, job.state.value, "enqueue it twice")
    data: dict[str, JSON] = {"queue": job.queue, "scheduled_at": job.scheduled_at}
    return _change(job, now, EventDraft(EventType.QUEUED, data), state=State.QUEUED)


_CLAIMED = _Fields(
    "state", "attempts", "started_at", "lease_expires_at", "claim_token", "worker_id", "last_seq"
)
_SUCCEEDED = _Fields(
    "state",
    "result",
    "error",
    "finished_at",
    "lease_expires_at",
    "claim_token",
    "worker_id",
    "last_seq",
)
# Enum members read once: a class attribute of an enum costs four times a global's.
_QUEUED, _RUNNING, _SUCCEEDED_STATE = State.QUEUED, State.RUNNING, State.SUCCEEDED
_STARTED_EVENT, _SUCCEEDED_EVENT = EventType.STARTED, EventType.SUCCEEDED


def claim(job: Job, worker_id: str, token: str, now: float, lease: float) -> Change:
    if job.state is not _QUEUED:
        raise InvalidTransition(job.id, job.state.value, "move to running")
    attempt = job.attempts + 1
    seq = job.last_seq + 1
    claimed = _CLAIMED.set(job, _RUNNING, attempt, now, now + lease, token, worker_id, seq)
    started = Event(job.id, seq, _STARTED_EVENT, {"attempt": attempt, "worker": worker_id}, now)
    return Change(claimed, (started,), _CLAIMED.names)


def heartbeat(job: Job, token: str, now: float, lease: float) -> Change:
    _require_claim(job, token, "extend its lease")
    return Change(evolve(job, lease_expires_at=now + lease), (), ("lease_expires_at",))


def report(job: Job, token: str, drafts: list[EventDraft], now: float) -> Change:
    """Progress and partial outputs from the attempt that holds the claim."""
    _require_claim(job, token, "report progress")
    progress = job.progress
    for draft in drafts:
        if draft.type is EventType.PROGRESS:
            progress = Progress(
                draft.data.get("current", 0), draft.data.get("total"), draft.data.get("message")
            )
        elif draft.type is not EventType.OUTPUT:
            raise InvalidTransition(job.id, job.state.value, f"report a {draft.type} event")
    return _change(job, now, *drafts, progress=progress)


def succeed(job: Job, token: str, result: JSON, now: float) -> Change:
    _require_claim(job, token, "move to succeeded")
    seq = job.last_seq + 1
    done = _SUCCEEDED.set(job, _SUCCEEDED_STATE, result, None, now, None, None, None, seq)
    # A large result is kept once, on the job, and the event refers to it (with_result);
    # a small one rides in the event too, so reading the log costs no further read.
    data: dict[str, JSON] = (
        {"result": result, "attempt": job.attempts}
        if _small(result)
        else {"attempt": job.attempts, RESULT_REF: True}
    )
    event = Event(job.id, seq, _SUCCEEDED_EVENT, data, now)
    return Change(done, (event,), _SUCCEEDED.names)


# A ``succeeded`` event's data holds this key instead of a copy of a result larger than
# INLINE_RESULT_BYTES as JSON; readers put the job's result back (feed.results) before
# any channel shows the event.
RESULT_REF = "result_ref"
INLINE_RESULT_BYTES = 4_096  # store/lua/redis.lua has the same bound
_SCALARS = (int, float, bool, type(None))


def _small(result: JSON) -> bool:
    """Whether the result's JSON encoding fits INLINE_RESULT_BYTES; cheap for the usual
    small results (a number, a short string, a small object)."""
    if isinstance(result, _SCALARS):
        return True
    if isinstance(result, str):
        if len(result) <= INLINE_RESULT_BYTES // 6 - 2:
            return True  # 6 bytes a character at worst, escaped, and the quotes
        if len(result) > INLINE_RESULT_BYTES:
            return False
    try:
        encoded = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return False
    return len(encoded.encode()) <= INLINE_RESULT_BYTES


def refers_to_result(event: Event) -> bool:
    return event.type is _SUCCEEDED_EVENT and event.data.get(RESULT_REF) is True


def with_result(event: Event, result: JSON) -> Event:
    """A ``succeeded`` event as channels show it: ``{"result", "attempt"}``."""
    data = {k: v for k, v in event.data.items() if k != RESULT_REF}
    return dataclasses.replace(event, data={"result": result, **data})


def fail(
    job: Job,
    token: str,
    error: dict[str, JSON],
    now: float,
    retry_at: float | None,
    charge: bool = True,
) -> Change:
    """A failed attempt: retried at ``retry_at`` while attempts remain, else failed.

    ``charge=False`` (a job that raised ``Retry(charge=False)``): the attempt is handed
    back uncharged, as at a graceful shutdown, and the job runs again at ``retry_at``
    whatever attempts remain; its ``retrying`` event says ``"charged": false``.
    """
    _require_claim(job, token, "record a failure")
    return _failed_attempt(job, error, now, retry_at, charge)


def _failed_attempt(
    job: Job, error: dict[str, JSON], now: float, retry_at: float | None, charge: bool = True
) -> Change:
    if retry_at is not None and (not charge or job.attempts < job.max_attempts):
        if job.cancel_requested:
            return _change(
                job,
                now,
                EventDraft(
                    EventType.CANCELLED,
                    {"reason": "cancel requested; not retried", "attempt": job.attempts},
                ),
                state=State.CANCELLED,
                error=error,
                finished_at=now,
                **_RELEASED,
            )
        data: dict[str, JSON] = {"attempt": job.attempts, "error": error, "next_run_at": retry_at}
        uncharged: dict[str, Any] = {}
        if not charge:
            data["charged"] = False
            uncharged["attempts"] = max(0, job.attempts - 1)
        return _change(
            job,
            now,
            EventDraft(EventType.RETRYING, data),
            state=State.QUEUED,
            error=error,
            scheduled_at=retry_at,
            **uncharged,
            **_RELEASED,
        )
    return _change(
        job,
        now,
        EventDraft(EventType.FAILED, {"error": error, "attempt": job.attempts}),
        state=State.FAILED,
        error=error,
        finished_at=now,
        **_RELEASED,
    )


def release(job: Job, token: str, now: float, due_at: float | None = None) -> Change:
    """Graceful shutdown hands the job back at once, a rate limit's refusal at
    ``due_at``; the attempt is not charged."""
    _require_claim(job, token, "release it")
    if job.cancel_requested:
        return cancelled(job, token, now, reason="cancel requested; released at shutdown")
    return _change(
        job,
        now,
        EventDraft(EventType.QUEUED, {"released": True, "worker": job.worker_id}),
        state=State.QUEUED,
        attempts=max(0, job.attempts - 1),
        scheduled_at=now if due_at is None else max(now, due_at),
        **_RELEASED,
    )


def runs_alone(job: Job) -> bool:
    """Whether a worker must run the job with nothing beside it: it has lost its worker
    before, and one more loss would spend its crash budget. A job dying beside a poison
    job in the same process cannot tell its crash from the poison's; run alone, the next
    loss can only be its own, so only a job that kills its worker is failed for it."""
    return job.crashes >= 1 and job.crashes >= job.max_crashes - 1


def crash_spread(job_id: str, crashes: int) -> float:
    """How long after a lost lease the job is due again: a share of the window set by
    four hex digits of its id (UUIDv7: random bits), another four at each crash, so it
    is the same wherever it is computed (``store/lua/redis.lua`` computes it too)."""
    window = min(CRASH_SPREAD_SECONDS * 2.0 ** (crashes - 1), CRASH_SPREAD_CAP_SECONDS)
    k = (crashes - 1) % 3 + 1
    digits = job_id[-4 * k : len(job_id) - 4 * (k - 1)]
    try:
        share = int(digits, 16) / 65536.0 if len(digits) == 4 else 0.0
    except ValueError:
        share = 0.0
    return window * share


def expire(job: Job, now: float) -> Change:
    """The lease ran out (worker killed, host cut off): not the job's fault.

    The attempt is handed back uncharged, as at a graceful shutdown, and counted among the
    job's crashes instead; the job is due again within :func:`crash_spread`. Once it has
    lost its worker ``max_crashes`` times the job fails (a poison job must not loop for
    ever). A job whose cancel was requested ends cancelled.
    """
    if job.state is not State.RUNNING:
        raise InvalidTransition(job.id, job.state.value, "expire its lease")
    if job.lease_expires_at is not None and job.lease_expires_at > now:
        raise InvalidTransition(job.id, "running with a live lease", "expire its lease")
    if job.cancel_requested:
        return _change(
            job,
            now,
            EventDraft(EventType.CANCELLED, {"reason": "lease expired after cancel request"}),
            state=State.CANCELLED,
            finished_at=now,
            **_RELEASED,
        )
    crashes, budget = job.crashes + 1, job.max_crashes
    lost = {
        "type": LEASE_EXPIRED,
        "message": f"worker {job.worker_id} stopped heartbeating during attempt {job.attempts} "
        f"(lost lease {crashes} of at most {budget})",
    }
    if crashes >= budget:
        error = {
            "type": CRASH_BUDGET_SPENT,
            "message": f"the job lost its worker {crashes} times (killed, or cut off from the "
            f"store, while running it) and its crash budget is max_crashes={budget}: it is "
            f"taken for a job that kills its worker and not run again; last: {lost['message']}",
        }
        return _change(
            job,
            now,
            EventDraft(
                EventType.FAILED,
                {"error": error, "attempt": job.attempts, "lost": True, "crashes": crashes},
            ),
            state=State.FAILED,
            error=error,
            finished_at=now,
            crashes=crashes,
            **_RELEASED,
        )
    due = now + crash_spread(job.id, crashes)
    return _change(
        job,
        now,
        EventDraft(
            EventType.QUEUED,
            {
                "lost": True,
                "worker": job.worker_id,
                "attempt": job.attempts,
                "crashes": crashes,
                "max_crashes": budget,
                "error": lost,
                "next_run_at": due,
            },
        ),
        state=State.QUEUED,
        attempts=max(0, job.attempts - 1),
        crashes=crashes,
        error=lost,
        scheduled_at=due,
        **_RELEASED,
    )


def expire_unstarted(job: Job, now: float) -> Change:
    """A queued job past its expiry ends cancelled with reason ``expired``: it never runs."""
    if job.state is not State.QUEUED:
        if job.terminal:
            raise AlreadyTerminal(job.id, job.state.value, "cancel it as expired")
        raise InvalidTransition(job.id, job.state.value, "cancel it as expired")
    if not expired(job, now):
        raise InvalidTransition(job.id, "queued and not expired", "cancel it as expired")
    return _change(
        job,
        now,
        EventDraft(EventType.CANCELLED, {"reason": EXPIRED}),
        state=State.CANCELLED,
        finished_at=now,
        **_RELEASED,
    )


def request_cancel(job: Job, now: float) -> Change:
    """A queued job is cancelled at once; a running one is flagged for its worker."""
    if job.terminal:
        raise AlreadyTerminal(job.id, job.state.value, "cancel it")
    if job.state is State.QUEUED:
        return _change(
            job,
            now,
            EventDraft(EventType.CANCELLED, {"reason": "cancelled while queued"}),
            state=State.CANCELLED,
            finished_at=now,
            cancel_requested=True,
            **_RELEASED,
        )
    return Change(evolve(job, cancel_requested=True), (), ("cancel_requested",))


CANCELLED_WHILE_RUNNING = "cancelled while running"
EXPIRED = "expired"  # the reason of a job cancelled because it was not started in time
EXPIRES_AT_OPTION = "expires_at"  # epoch seconds, in a job's options


def expires_at(job: Job) -> float | None:
    """When the job must have started by (its ``expires_at`` option), if ever."""
    value = job.options.get(EXPIRES_AT_OPTION) if job.options else None
    return float(value) if isinstance(value, int | float) else None


def expired(job: Job, now: float) -> bool:
    """Whether the job may no longer start: its expiry has passed."""
    deadline = expires_at(job)
    return deadline is not None and deadline <= now


def cancelled(job: Job, token: str, now: float, reason: str = CANCELLED_WHILE_RUNNING) -> Change:
    """The worker stopped a running job after a cancel request."""
    _require_claim(job, token, "move to cancelled")
    return _change(
        job,
        now,
        EventDraft(EventType.CANCELLED, {"reason": reason, "attempt": job.attempts}),
        state=State.CANCELLED,
        finished_at=now,
        **_RELEASED,
    )
