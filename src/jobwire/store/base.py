"""The store contract: the only seam between jobwire and persistence.

Every engine (memory, SQLite, PostgreSQL, Redis) implements these job operations and
passes one contract suite (``tests/contract``). The rules themselves live in
:mod:`jobwire.model`; a store reads the job, asks the model for the change, and writes
the record and its events in one transaction, refusing the write when the claim token
it was given is no longer the job's (fencing).

Wake-ups are hints: a store pushes :class:`Notice` values to the callbacks registered
with :meth:`Store.add_listener` after each commit, but a follower that misses one loses
only latency, because the log in the store is the truth.
"""

from __future__ import annotations

import abc
import builtins
import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from jobwire.errors import InvalidTransition, JobNotFound
from jobwire.model import (
    CANCELLED_WHILE_RUNNING,
    TERMINAL_EVENTS,
    TERMINAL_STATES,
    Change,
    Event,
    EventDraft,
    EventType,
    Job,
    State,
    refers_to_result,
    with_result,
)
from jobwire.store.insight import (
    Activity,
    Attempt,
    Timing,
    activity_from,
    attempts_from,
    retry_key,
)
from jobwire.store.stats import JobStats, StatRow, build, counts_by_queue, webhook_totals
from jobwire.throttle import Limit


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue, already validated."""

    id: str
    job: str
    args: dict[str, Any]
    queue: str = "default"
    priority: int = 0
    max_attempts: int = 1
    timeout: float | None = None
    scheduled_at: float | None = None  # None: now
    owner: str = "anonymous"
    idempotency_key: str | None = None
    fingerprint: str | None = None  # of the request, to tell a replay from a reuse
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Enqueued:
    job: Job
    created: bool  # False when an idempotency key returned an existing job


@dataclass(frozen=True, slots=True)
class Claim:
    job: Job
    token: str


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    lost: frozenset[str]  # jobs this worker no longer holds: stop working on them
    cancel_requested: frozenset[str]  # jobs whose cancellation was asked for


@dataclass(frozen=True, slots=True)
class ListQuery:
    owner: str | None = None
    states: tuple[State, ...] = ()
    job: str | None = None
    queue: str | None = None
    before_id: str | None = None  # cursor: newest first, strictly older than this id
    limit: int = 50


@dataclass(frozen=True, slots=True)
class FinishedQuery:
    """Terminal jobs to count or purge: every filter given must hold."""

    owner: str | None = None
    states: tuple[State, ...] = ()  # terminal states only; empty: all of them
    job: str | None = None
    queue: str | None = None
    finished_after: float | None = None  # inclusive
    finished_before: float | None = None  # exclusive

    def __post_init__(self) -> None:
        for state in self.states:
            if state not in TERMINAL_STATES:
                raise ValueError(f"expected terminal states only, got {state.value!r}")

    @property
    def state_names(self) -> builtins.list[str]:
        """The states asked for, as text: every terminal state when none is named."""
        chosen = self.states or (State.SUCCEEDED, State.FAILED, State.CANCELLED)
        return [state.value for state in chosen]

    def matches(self, job: Job) -> bool:
        at = job.finished_at
        return (
            job.terminal
            and at is not None
            and job.state.value in self.state_names
            and (self.owner is None or job.owner == self.owner)
            and (self.job is None or job.job == self.job)
            and (self.queue is None or job.queue == self.queue)
            and (self.finished_after is None or at >= self.finished_after)
            and (self.finished_before is None or at < self.finished_before)
        )


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the store keeps of a schedule declared in code (see :mod:`jobwire.schedules`).

    Who changes it: any scheduler (every server and worker runs one) records a tick it
    fired; pause and resume come from HTTP, the CLI or the dashboard. ``since`` only
    moves forward: ticks after it are still to fire.
    """

    name: str
    paused: bool = False
    since: float = 0.0  # first seen, the last tick fired, or resumed: the later
    last_fire_at: float | None = None  # the newest tick fired
    last_job_id: str | None = None  # the job of that tick
    updated_at: float = 0.0

    def fired(self, fire_at: float, job_id: str, now: float) -> ScheduleState:
        """This state once the tick at ``fire_at`` has its job (see
        :meth:`Store.record_schedule_fire`)."""
        newest = self.last_fire_at is None or fire_at >= self.last_fire_at
        return ScheduleState(
            name=self.name,
            paused=self.paused,
            since=max(self.since, fire_at),
            last_fire_at=fire_at if newest else self.last_fire_at,
            last_job_id=job_id if newest else self.last_job_id,
            updated_at=now,
        )

    def pausing(self, paused: bool, now: float) -> ScheduleState:
        """This state paused or resumed (see :meth:`Store.set_schedule_paused`)."""
        since = self.since if paused or not self.paused else max(self.since, now)
        return ScheduleState(self.name, paused, since, self.last_fire_at, self.last_job_id, now)


class WorkflowState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A workflow as submitted (see :mod:`jobwire.workflows`): its steps, stored whole.

    Who moves it out of ``running``: the workflow service of any process, once every
    step has ended (→ succeeded or failed); a cancel (→ cancelled). The other states are
    final. Where each step stands is read from its job, not kept here.
    """

    id: str
    owner: str
    steps: builtins.list[dict[str, Any]]
    state: WorkflowState = WorkflowState.RUNNING
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "owner": self.owner,
                "steps": self.steps,
                "state": self.state.value,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkflowRecord:
        data = json.loads(text)
        return cls(
            id=data["id"],
            owner=data["owner"],
            steps=data["steps"],
            state=WorkflowState(data["state"]),
            created_at=data["created_at"],
            updated_at=data["updated_at"],
        )


CANCELLABLE = (State.QUEUED, State.RUNNING)


@dataclass(frozen=True, slots=True)
class BulkQuery:
    """Unfinished jobs to count or cancel at once: every filter given must hold."""

    owner: str | None = None
    states: tuple[State, ...] = CANCELLABLE  # queued and/or running
    job: str | None = None
    queue: str | None = None
    created_after: float | None = None  # inclusive
    created_before: float | None = None  # exclusive

    def __post_init__(self) -> None:
        for state in self.states:
            if state not in CANCELLABLE:
                raise ValueError(f"expected queued or running, got {state.value!r}")

    def matches(self, job: Job) -> bool:
        return (
            job.state in (self.states or CANCELLABLE)
            and (self.created_after is None or job.created_at >= self.created_after)
            and (self.created_before is None or job.created_at < self.created_before)
        )


# How many finished jobs the activity of one window read at most (the newest ones).
ACTIVITY_LIMIT = 20_000
RETRIABLE = frozenset({State.FAILED, State.CANCELLED})


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Job]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker process as it registered itself, with its latest heartbeat.

    The store keeps what workers write and decides nothing about them: whether a worker
    is lost is a reading of ``last_heartbeat`` against the lease (:meth:`is_lost`).
    """

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int  # job slots over all its executors
    version: str  # of jobwire
    started_at: float
    last_heartbeat: float
    running: tuple[str, ...] = ()  # ids of the jobs it was running at that heartbeat
    # The job names it can run; empty when not told (a worker of an older jobwire).
    names: tuple[str, ...] = ()

    def is_lost(self, lease: float, now: float) -> bool:
        """No heartbeat for a whole lease: its jobs' leases are running out unrenewed."""
        return now - self.last_heartbeat > lease

    def runs(self, job: str, queue: str) -> bool:
        """It takes jobs of this name from this queue (any name, when it did not say)."""
        return queue in self.queues and (not self.names or job in self.names)


def no_live_worker(job: Job, workers: Iterable[WorkerInfo], lease: float, now: float) -> bool:
    """A queued job that no worker heard from within the lease would take: nothing runs
    it until one that registers its name and queue starts. False for any other state."""
    if job.state is not State.QUEUED:
        return False
    return not any(w.runs(job.job, job.queue) and not w.is_lost(lease, now) for w in workers)


class NoticeKind(StrEnum):
    JOBS = "jobs"  # key = queue name: new or newly due work
    JOB = "job"  # key = job id: the job's record or log changed
    CANCEL = "cancel"  # key = job id: cancellation requested for a running job
    WEBHOOKS = "webhooks"  # key = job id: the job has new webhook deliveries to send
    # key = "": wake-ups may have been missed (the store's listening connection was
    # lost and is back): every waiter looks at the store again.
    RESYNC = "resync"


class Notice(NamedTuple):
    # A tuple, not a dataclass: thousands are made and de-duplicated (hashed) per second.
    kind: NoticeKind
    key: str


Listener = Callable[[Sequence[Notice]], None]


@dataclass(frozen=True, slots=True)
class Ring:
    """A wake-up for new work that a :class:`Doorbell` handed to this waiter only."""

    # Where it was taken from, to give it back (Doorbell.pass_on); None when the waiter's
    # connection was lost, so that one may have been missed: look at the store anyway.
    source: str | None


class Doorbell(abc.ABC):
    """Wake-ups for new work that each go to one waiting worker, where a store can.

    A ``jobs`` notice reaches every process, so every idle worker claims for each new
    job and all but one of those claims find nothing; on an engine that runs them one at
    a time (Redis) the winner's waits behind the others'. A store with a doorbell keeps,
    per queue and job name, a bounded number of wake-ups, one per job that became due
    (and one for a job due later, so that a worker learns when), and hands each to one
    waiter. Like every wake-up it is a hint: a waiter that dies holding one, or a
    connection that drops, loses it, so a worker still looks at the store every
    ``poll_seconds``. A worker waits only for the job names it has free slots for, so a
    busy worker never takes a wake-up another could use.
    """

    @abc.abstractmethod
    async def wait(
        self, queues: Sequence[str], names: Sequence[str], timeout: float
    ) -> Ring | None:
        """Wait up to ``timeout`` seconds for a wake-up for due work of these queues and
        job names; None on timeout or :meth:`interrupt`. Never raises for the store
        being away: it answers a :class:`Ring` without a source (look again), after a
        backoff while the outage lasts."""

    @abc.abstractmethod
    async def interrupt(self) -> None:
        """End the wait in progress, or the next one when none has begun, as a timeout."""

    @abc.abstractmethod
    async def pass_on(self, ring: Ring) -> None:
        """Give back a wake-up this waiter cannot use, for another waiter."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the waiting connection."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # to be sent at next_attempt_at (again, after a failed attempt)
    DELIVERED = "delivered"  # a 2xx answered: done
    FAILED = "failed"  # the attempts ran out: done
    DISABLED = "disabled"  # the URL answered 410 Gone: nothing more goes to it for this job


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook message to one URL, derived from one event of a job (the outbox).

    Who moves a delivery out of ``pending``: the sender that claimed it, through
    :meth:`Store.record_delivery_attempt` (→ delivered, failed, disabled, or pending
    again later); a 410 recorded for another delivery of the same job and URL
    (→ disabled). The other statuses are final.
    """

    id: str  # the webhook-id, the same on every attempt: "msg_<job id>_<seq>"
    job_id: str
    seq: int
    event: str  # the event's type
    url: str
    body: str  # the JSON body, fixed when the event was appended
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    created_at: float = 0.0
    next_attempt_at: float | None = None
    last_attempt_at: float | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    claim_token: str | None = None
    lease_expires_at: float | None = None


class Store(abc.ABC):
    """Persistence of jobs and their event logs. All methods are coroutines."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    # -- lifecycle ---------------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema to the current version; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush pending writes and release connections."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise :class:`~jobwire.errors.StoreUnavailable` unless reachable and current."""

    # -- producing ---------------------------------------------------------------------

    @abc.abstractmethod
    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Store new jobs with event 1 ``queued``, all or none.

        A job whose ``(owner, idempotency_key)`` already exists is not created again: the
        existing job is returned with ``created=False``, or
        :class:`~jobwire.errors.IdempotencyConflict` is raised when the fingerprints
        differ.
        """

    # -- working -----------------------------------------------------------------------

    @abc.abstractmethod
    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        names: Sequence[str],
        limit: int,
        lease: float,
    ) -> list[Claim]:
        """Move up to ``limit`` due queued jobs of these queues and names to running.

        Highest priority first, then earliest scheduled. Each claim gets a fresh token,
        a lease of ``lease`` seconds, one more attempt and a ``started`` event.
        """

    @abc.abstractmethod
    async def heartbeat(
        self, worker_id: str, tokens: Mapping[str, str], lease: float
    ) -> HeartbeatReply:
        """Extend the leases of jobs still held with these tokens."""

    @abc.abstractmethod
    async def report(self, job_id: str, token: str, events: Sequence[EventDraft]) -> None:
        """Append ``progress`` and ``output`` events; fenced by the token."""

    @abc.abstractmethod
    async def finish(self, job_id: str, token: str, result: Any) -> Job:
        """running → succeeded; fenced by the token."""

    @abc.abstractmethod
    async def fail(
        self,
        job_id: str,
        token: str,
        error: dict[str, Any],
        retry_at: float | None,
        *,
        charge: bool = True,
    ) -> Job:
        """running → queued at ``retry_at`` while attempts remain, else failed; fenced.

        ``charge=False``: the attempt is not counted (``attempts`` goes back down by
        one) and the job is queued at ``retry_at`` whatever attempts remain."""

    @abc.abstractmethod
    async def release(self, job_id: str, token: str, due_at: float | None = None) -> Job:
        """running → queued, due at ``due_at`` (default now), the attempt not charged
        (graceful shutdown; a rate limit's refusal); fenced: ``StaleClaim``,
        ``JobNotFound``."""

    # -- rate limits (see jobwire.throttle) -------------------------------------------------

    @abc.abstractmethod
    async def acquire_permit(
        self, limits: Sequence[Limit], holder: str, expires_at: float, now: float
    ) -> float | None:
        """Take a permit under every limit at once, all or none, atomically across every
        client of the store: None when granted (one start counted in each rate window;
        ``holder`` running under each concurrency limit until ``expires_at`` unless
        renewed or released), else the earliest time worth asking again
        (:func:`jobwire.throttle.refusal`) and nothing is taken. Taking again for a
        holder already running under a key does not count it twice. The grant is dated
        ``now`` moved on by any wait for its turn (Redis: the server's clock if later),
        and ``expires_at`` with it. Raises ``StoreUnavailable``."""

    @abc.abstractmethod
    async def renew_permits(self, held: Sequence[tuple[str, str]], expires_at: float) -> None:
        """Move the expiry of each (key, holder) permit still held to ``expires_at`` (the
        worker's heartbeat, so a permit lives as long as its lease); a permit already
        gone stays gone. Raises ``StoreUnavailable``."""

    @abc.abstractmethod
    async def release_permit(self, keys: Sequence[str], holder: str) -> None:
        """Give back ``holder``'s running permit under each key (its starts stay counted
        in their windows); releasing one not held is no error. Raises
        ``StoreUnavailable``."""

    @abc.abstractmethod
    async def mark_cancelled(
        self, job_id: str, token: str, reason: str = CANCELLED_WHILE_RUNNING
    ) -> Job:
        """running → cancelled by the worker that holds it, the event giving ``reason``
        (``expired`` for a job claimed past its expiry); fenced."""

    # -- controlling -------------------------------------------------------------------

    @abc.abstractmethod
    async def cancel_expired(self, job_id: str) -> Job:
        """queued → cancelled with reason ``expired``, when its ``expires_at`` option has
        passed; raises InvalidTransition when the job is not queued or not expired yet
        (AlreadyTerminal when it has ended), JobNotFound when there is no such job."""

    @abc.abstractmethod
    async def cancel(self, job_id: str, owner: str | None = None) -> Job:
        """Cancel a queued job now, or flag a running one for its worker.

        Raises :class:`~jobwire.errors.JobNotFound` (also when ``owner`` is given and
        does not own it) or :class:`~jobwire.errors.AlreadyTerminal`.
        """

    # -- reading -----------------------------------------------------------------------

    @abc.abstractmethod
    async def get(self, job_id: str, owner: str | None = None) -> Job | None:
        """The job, or None when it does not exist or ``owner`` does not own it."""

    @abc.abstractmethod
    async def list(self, query: ListQuery) -> Page:
        """Jobs newest first, filtered, with a cursor to the next page."""

    @abc.abstractmethod
    async def events(self, job_id: str, after: int = 0, limit: int = 1000) -> builtins.list[Event]:
        """The job's events with sequence numbers greater than ``after``, in order."""

    @abc.abstractmethod
    async def feed(
        self, after: int, owner: str | None = None, limit: int = 1000
    ) -> builtins.list[Event]:
        """Events of all jobs (of ``owner``, when given) after the store-wide ``cursor``."""

    @abc.abstractmethod
    async def last_cursor(self) -> int:
        """The store-wide cursor of the newest event (0 when there is none)."""

    @abc.abstractmethod
    async def next_due(self, queues: Sequence[str], names: Sequence[str]) -> float | None:
        """When the earliest queued job of these queues and names becomes due."""

    # -- maintenance -------------------------------------------------------------------

    @abc.abstractmethod
    async def reap(self, now: float | None = None) -> builtins.list[Job]:
        """Jobs whose lease expired go back to queued (or end); returns them as changed."""

    @abc.abstractmethod
    async def prune(self, finished_before: float) -> int:
        """Delete terminal jobs (and their events) finished before this time."""

    # -- the dashboard -----------------------------------------------------------------

    @abc.abstractmethod
    async def timings(
        self, since: float, owner: str | None = None, limit: int = ACTIVITY_LIMIT
    ) -> builtins.list[Timing]:
        """Terminal jobs finished at or after ``since``, newest first, at most ``limit``."""

    @abc.abstractmethod
    async def oldest_queued(self, now: float, owner: str | None = None) -> dict[str, float]:
        """Per queue, when its longest-waiting job became due: the earliest
        ``scheduled_at`` among queued jobs due at ``now``; queues with none are left out."""

    @abc.abstractmethod
    async def count_finished(self, query: FinishedQuery) -> int:
        """How many terminal jobs match; what :meth:`purge` would delete now."""

    @abc.abstractmethod
    async def purge(self, query: FinishedQuery) -> int:
        """Delete the terminal jobs that match, with their events, deliveries and
        idempotency keys, as :meth:`prune` does; returns how many."""

    @abc.abstractmethod
    async def idempotent_job(self, owner: str, key: str) -> str | None:
        """The id of the job enqueued by ``owner`` under this idempotency key, if any."""

    async def attempts(self, job_id: str) -> builtins.list[Attempt]:
        """Every attempt of the job (worker, start, end, how it ended), from its log."""
        events: builtins.list[Event] = []
        while True:
            page = await self.events(job_id, events[-1].seq if events else 0, 1000)
            events.extend(page)
            if len(page) < 1000:
                return attempts_from(events)

    async def activity(
        self, now: float, window: float = 3600.0, owner: str | None = None
    ) -> Activity:
        """Succeeded and failed per minute, wait and run percentiles, over the window."""
        since = now - window
        timings = await self.timings(since, owner, ACTIVITY_LIMIT + 1)
        complete = len(timings) <= ACTIVITY_LIMIT
        return activity_from(timings[:ACTIVITY_LIMIT], since, now, complete)

    async def retry(self, job_id: str, new_id: str, owner: str | None = None) -> Enqueued:
        """A new queued job with the arguments and options of a failed or cancelled one.

        The new job's ``options["retry_of"]`` names the original, and
        :meth:`retried_by` finds the new job from the original. One retry per job: asking
        again returns the same new job (``created=False``); retry that one to go on.
        Raises :class:`~jobwire.errors.JobNotFound` (also for a job ``owner`` does not
        own) or :class:`~jobwire.errors.InvalidTransition` unless failed or cancelled.
        """
        original = await self.get(job_id, owner)
        if original is None:
            raise JobNotFound(job_id)
        if original.state not in RETRIABLE:
            raise InvalidTransition(job_id, original.state.value, "retry it")
        options = {k: v for k, v in original.options.items() if k != "retry_of"}
        [enqueued] = await self.enqueue(
            [
                NewJob(
                    id=new_id,
                    job=original.job,
                    args=original.args,
                    queue=original.queue,
                    priority=original.priority,
                    max_attempts=original.max_attempts,
                    timeout=original.timeout,
                    owner=original.owner,
                    idempotency_key=retry_key(original.id),
                    options={**options, "retry_of": original.id},
                )
            ]
        )
        return enqueued

    async def matching(self, query: BulkQuery) -> builtins.list[Job]:
        """The unfinished jobs that match, newest first (read page by page: O(matches))."""
        found: builtins.list[Job] = []
        cursor: str | None = None
        while True:
            page = await self.list(
                ListQuery(
                    owner=query.owner,
                    states=query.states or CANCELLABLE,
                    job=query.job,
                    queue=query.queue,
                    before_id=cursor,
                    limit=500,
                )
            )
            found.extend(job for job in page.items if query.matches(job))
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def cancel_matching(self, query: BulkQuery) -> int:
        """Cancel every unfinished job that matches, as :meth:`cancel` does one (a queued
        job at once, a running one flagged for its worker); returns how many. A job that
        ends meanwhile is passed over, not counted."""
        cancelled = 0
        for job in await self.matching(query):
            try:
                await self.cancel(job.id, query.owner)
            except (JobNotFound, InvalidTransition):
                continue  # it ended (or was pruned) since it was read
            cancelled += 1
        return cancelled

    async def purge_queued(self, query: BulkQuery) -> int:
        """Cancel the queued jobs that match, then delete them with their events,
        deliveries and idempotency keys as :meth:`purge` does; returns how many were
        deleted. The deletion is :meth:`purge` of the cancelled jobs of the same owner,
        name and queue that ended during the call, so a job of those that someone else
        cancelled at that very moment goes too."""
        started = time.time()
        cancelled = await self.cancel_matching(dataclasses.replace(query, states=(State.QUEUED,)))
        if not cancelled:
            return 0
        return await self.purge(
            FinishedQuery(
                owner=query.owner,
                states=(State.CANCELLED,),
                job=query.job,
                queue=query.queue,
                finished_after=started,
                finished_before=time.time() + 1e-3,
            )
        )

    async def retried_by(self, job: Job) -> str | None:
        """The id of the job that retried this one, if any (see :meth:`retry`)."""
        if job.state not in RETRIABLE:
            return None
        return await self.idempotent_job(job.owner, retry_key(job.id))

    # -- statistics --------------------------------------------------------------------

    @abc.abstractmethod
    async def stat_rows(self) -> builtins.list[StatRow]:
        """The stored counters as ``(queue, job, key, value)`` (see
        :mod:`jobwire.store.stats`), maintained in the transactions that change jobs and
        record webhook attempts: a read of a small table, whatever the number of jobs."""

    async def stats(self) -> builtins.list[JobStats]:
        """Counts, totals and time histograms per queue and job name."""
        return build(await self.stat_rows())

    async def webhook_totals(self) -> dict[str, int]:
        """``delivered`` webhooks and delivery attempts that were ``failures``."""
        return webhook_totals(await self.stat_rows())

    async def counts(self) -> dict[str, dict[State, int]]:
        """How many jobs each queue holds in each state (every state present, 0 if none).

        Cheap with millions of finished jobs: it sums the per-state counters of
        :meth:`stats`, which each engine keeps in the same transaction as the transitions
        (SQLite adds up a whole group commit's changes into one update per counter;
        PostgreSQL spreads each counter over a few rows so that concurrent transactions
        do not queue on one row lock, and an application's own transaction (transactional
        enqueue) only inserts its increments, folded in by the reaper; Redis updates a
        hash in the transition's script), and prune takes the pruned jobs off. It never
        counts rows of the jobs table.
        """
        return counts_by_queue(await self.stats())

    # -- worker registry ---------------------------------------------------------------

    @abc.abstractmethod
    async def register_worker(self, info: WorkerInfo) -> None:
        """Record a worker (again: a worker with the same id is replaced)."""

    @abc.abstractmethod
    async def worker_heartbeat(self, worker_id: str, running: Sequence[str], now: float) -> bool:
        """Set the worker's ``last_heartbeat`` and running jobs; False when it is not
        registered (it was pruned, or the store lost it): register it again."""

    @abc.abstractmethod
    async def deregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped cleanly (drained); unknown ids are ignored."""

    @abc.abstractmethod
    async def list_workers(self) -> builtins.list[WorkerInfo]:
        """Every registered worker, by id, the lost ones included until pruned."""

    @abc.abstractmethod
    async def prune_workers(self, last_heartbeat_before: float) -> int:
        """Forget workers silent since before this time; returns how many."""

    # -- known job names ---------------------------------------------------------------

    @abc.abstractmethod
    async def record_job_names(self, names: Sequence[str], now: float) -> None:
        """Remember that an instance registering these job names started at ``now``.

        Kept for good (pruning jobs or workers leaves them), so a name is known once any
        server or worker has registered it; a name's last-seen time only moves forward.
        Raises :class:`~jobwire.errors.StoreUnavailable` when the store cannot be reached.
        """

    @abc.abstractmethod
    async def job_names(self) -> dict[str, float]:
        """Every job name ever recorded, with when an instance last registered it.

        Raises :class:`~jobwire.errors.StoreUnavailable` when the store cannot be reached.
        """

    # -- schedules ---------------------------------------------------------------------

    @abc.abstractmethod
    async def track_schedules(self, names: Sequence[str], now: float) -> dict[str, ScheduleState]:
        """The state of each named schedule; a name not stored yet is stored first, not
        paused, with ``since=now`` (a new schedule fires from its first tick after it was
        first seen, never for ticks before it). Concurrent calls create one state.

        Raises :class:`~jobwire.errors.StoreUnavailable` when the store cannot be reached.
        """

    @abc.abstractmethod
    async def record_schedule_fire(
        self, name: str, fire_at: float, job_id: str, now: float
    ) -> None:
        """Record that the tick at ``fire_at`` has its job ``job_id``: ``since`` and
        ``last_fire_at`` move forward to it (never back, so schedulers recording ticks out
        of order or twice change nothing), and ``last_job_id`` follows ``last_fire_at``.
        An unknown name is stored.

        Raises :class:`~jobwire.errors.StoreUnavailable` when the store cannot be reached.
        """

    @abc.abstractmethod
    async def set_schedule_paused(self, name: str, paused: bool, now: float) -> ScheduleState:
        """Pause or resume a schedule; returns its state. Resuming moves ``since`` to
        ``now``: ticks that passed while it was paused never fire. An unknown name is
        stored (callers check it is declared).

        Raises :class:`~jobwire.errors.StoreUnavailable` when the store cannot be reached.
        """

    # -- workflows ---------------------------------------------------------------------

    @abc.abstractmethod
    async def create_workflow(self, workflow: WorkflowRecord) -> None:
        """Store a new workflow whole, in one write (its steps' jobs are enqueued by
        the workflow service, under the steps' idempotency keys).

        Raises :class:`~jobwire.errors.StoreUnavailable` when the store cannot be reached.
        """

    @abc.abstractmethod
    async def get_workflow(
        self, workflow_id: str, owner: str | None = None
    ) -> WorkflowRecord | None:
        """The workflow, or None when it does not exist or ``owner`` does not own it."""

    @abc.abstractmethod
    async def open_workflows(self, limit: int = 1000) -> builtins.list[WorkflowRecord]:
        """Up to ``limit`` workflows still ``running``, oldest first."""

    @abc.abstractmethod
    async def end_workflow(
        self, workflow_id: str, state: WorkflowState, now: float
    ) -> WorkflowRecord | None:
        """running → ``state`` (succeeded, failed or cancelled), once: answers the ended
        workflow, or None when it was not running (another process ended it first, or
        there is no such workflow)."""

    # -- webhook outbox ----------------------------------------------------------------
    #
    # Deliveries are not created through this API: a store creates them in the same
    # transaction that appends an event of a type the job's webhook asks for (see
    # :func:`webhook_deliveries`), and sends a ``WEBHOOKS`` notice after that commit.

    @abc.abstractmethod
    async def claim_deliveries(self, limit: int, lease: float) -> builtins.list[Delivery]:
        """Lease up to ``limit`` pending deliveries that are due and not leased.

        Due: ``next_attempt_at`` has passed. Not leased: never claimed, or the lease of
        the sender that claimed it ran out (it died mid-send). Earliest due first. Each
        gets a fresh ``claim_token`` and a lease of ``lease`` seconds; attempts are
        counted only by :meth:`record_delivery_attempt`.
        """

    @abc.abstractmethod
    async def record_delivery_attempt(
        self,
        delivery_id: str,
        token: str,
        *,
        ok: bool,
        status_code: int | None,
        error: str | None,
        next_attempt_at: float | None,
        disable_url: bool = False,
    ) -> Delivery:
        """Count one attempt of a claimed delivery and release its lease; fenced by token.

        ``ok``: delivered. ``disable_url``: disabled, together with every pending
        delivery of the same job to the same URL, and no delivery to that URL is created
        for the job again. Otherwise pending again at ``next_attempt_at``, or failed for
        good when it is None. Raises :class:`~jobwire.errors.StaleClaim` when the token
        is no longer the delivery's (its lease ran out and another sender claimed it,
        a 410 disabled it) or the delivery is gone (pruned with its job).
        """

    @abc.abstractmethod
    async def deliveries_for(self, job_id: str) -> builtins.list[Delivery]:
        """The job's webhook deliveries, in event order."""

    @abc.abstractmethod
    async def next_delivery_at(self) -> float | None:
        """When the earliest pending delivery can be claimed (due, lease run out); None
        when no delivery is pending."""

    # -- wake-ups ----------------------------------------------------------------------

    def doorbell(self, waiter: str) -> Doorbell | None:
        """A doorbell for the worker ``waiter``, or None when new work is announced to
        every process by ``jobs`` notices only (the default)."""
        return None

    async def follow_news(self) -> None:
        """Make sure this process hears the ``job`` and ``jobs`` notices of every process,
        before a follower first reads what it follows. A store may leave them unheard
        until asked (a worker process follows no job): Redis does."""
        return None

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` on the store's event loop with notices after each commit."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, notices: Iterable[Notice]) -> None:
        batch = list(dict.fromkeys(notices))
        if not batch:
            return
        for listener in list(self._listeners):
            listener(batch)


def notices_for(jobs: Iterable[Job]) -> builtins.list[Notice]:
    """The wake-ups a committed change to these jobs calls for."""
    notices: builtins.list[Notice] = []
    for job in jobs:
        notices.append(Notice(NoticeKind.JOB, job.id))
        if job.state is State.QUEUED:
            notices.append(Notice(NoticeKind.JOBS, job.queue))
        elif job.state is State.RUNNING and job.cancel_requested:
            notices.append(Notice(NoticeKind.CANCEL, job.id))
    return notices


def delivery_notices(job_ids: Iterable[str]) -> builtins.list[Notice]:
    """The wake-ups for senders after a commit that created deliveries for these jobs."""
    return [Notice(NoticeKind.WEBHOOKS, job_id) for job_id in dict.fromkeys(job_ids)]


# -- the webhook outbox: which events become deliveries ------------------------------------

DEFAULT_WEBHOOK_EVENTS = frozenset(TERMINAL_EVENTS)


def webhook_target(options: Mapping[str, Any]) -> tuple[str, frozenset[EventType]] | None:
    """The URL and event types a job's ``options["webhook"]`` asks for, or None.

    ``{"url": ..., "events": [...] | None}``; no ``events`` means the terminal ones. The
    option was validated when the job was submitted; anything malformed here (a job
    stored by other means) asks for nothing rather than breaking the job's writes.
    """
    hook = options.get("webhook") if isinstance(options, Mapping) else None
    if not isinstance(hook, Mapping):
        return None
    url = hook.get("url")
    if not isinstance(url, str) or not url:
        return None
    names = hook.get("events")
    if names is None:
        return url, DEFAULT_WEBHOOK_EVENTS
    if not isinstance(names, list | tuple):
        return None
    known = {event.value for event in EventType}
    return url, frozenset(EventType(n) for n in names if isinstance(n, str) and n in known)


def message_id(job_id: str, seq: int) -> str:
    """A delivery's ``webhook-id``: one per event, the same on every attempt."""
    return f"msg_{job_id}_{seq}"


def webhook_body(job: Job, event: Event) -> str:
    """The Standard Webhooks payload for ``event``: ``{"type", "timestamp", "data"}``."""
    at = datetime.fromtimestamp(event.at, UTC).isoformat().replace("+00:00", "Z")
    data = {
        "id": job.id,
        "job": job.job,
        "state": job.state.value,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "seq": event.seq,
        "result": job.result,
        "error": job.error,
        "progress": job.progress.as_dict() if job.progress is not None else None,
        # As every channel shows it: a succeeded event with the result, not a reference.
        "event": with_result(event, job.result).data if refers_to_result(event) else event.data,
    }
    payload = {"type": f"job.{event.type.value}", "timestamp": at, "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def webhook_deliveries(
    change: Change, now: float, disabled: Callable[[str, str], bool]
) -> builtins.list[Delivery]:
    """The deliveries a change creates: one per new event of a type the job's webhook
    asks for, to its URL, unless ``disabled(job_id, url)`` (a 410 turned it off).

    Stores call this inside the transaction that appends the change's events, so an
    event and its delivery are committed together or not at all.
    """
    if not change.events or not change.job.options:
        return []  # the common case, decided before any type checks
    target = webhook_target(change.job.options)
    if target is None:
        return []
    url, wanted = target
    chosen = [event for event in change.events if event.type in wanted]
    if not chosen or disabled(change.job.id, url):
        return []
    return [
        Delivery(
            id=message_id(change.job.id, event.seq),
            job_id=change.job.id,
            seq=event.seq,
            event=event.type.value,
            url=url,
            body=webhook_body(change.job, event),
            created_at=now,
            next_attempt_at=now,
        )
        for event in chosen
    ]


def status_after_attempt(
    ok: bool, disable_url: bool, next_attempt_at: float | None
) -> DeliveryStatus:
    """Where one recorded attempt leaves its delivery: the same rule in every store."""
    if ok:
        return DeliveryStatus.DELIVERED
    if disable_url:
        return DeliveryStatus.DISABLED
    return DeliveryStatus.PENDING if next_attempt_at is not None else DeliveryStatus.FAILED
