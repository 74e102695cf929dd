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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jobwire.model import Event, EventDraft, Job, State


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
class Page:
    items: list[Job]
    next_cursor: str | None


class NoticeKind(StrEnum):
    JOBS = "jobs"  # key = queue name: new or newly due work
    JOB = "job"  # key = job id: the job's record or log changed
    CANCEL = "cancel"  # key = job id: cancellation requested for a running job


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    key: str


Listener = Callable[[Sequence[Notice]], None]


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
        self, job_id: str, token: str, error: dict[str, Any], retry_at: float | None
    ) -> Job:
        """running → queued at ``retry_at`` while attempts remain, else failed; fenced."""

    @abc.abstractmethod
    async def release(self, job_id: str, token: str) -> Job:
        """running → queued now, the attempt not charged (graceful shutdown); fenced."""

    @abc.abstractmethod
    async def mark_cancelled(self, job_id: str, token: str) -> Job:
        """running → cancelled by the worker that holds it; fenced."""

    # -- controlling -------------------------------------------------------------------

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
    async def feed(self, after: int, owner: str | None = None, limit: int = 1000) -> builtins.list[Event]:
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

    # -- wake-ups ----------------------------------------------------------------------

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
