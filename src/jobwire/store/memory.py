"""An in-process store for your own tests: the same rules as every engine, kept in dicts.

It applies the transitions of :mod:`jobwire.model` exactly as the SQLite store does and
passes the same contract suite; it just keeps nothing once the process ends and is not
shared between processes. Values are stored as JSON (copied through ``json``), so a
result that the real stores would refuse is refused here too, and mutating an argument
after enqueueing it changes nothing stored.

Each operation runs under one asyncio lock and commits all or nothing; listeners get
their notices after it commits. Pass ``clock=`` to control the time the store sees.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins  # the method list() hides the type below it
import dataclasses
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jobwire import model
from jobwire.errors import (
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    JobwireError,
    StaleClaim,
    StoreUnavailable,
)
from jobwire.ids import new_token
from jobwire.model import Event, EventDraft, Job, Progress, State
from jobwire.store import stats as job_stats
from jobwire.store.base import (
    Claim,
    Delivery,
    DeliveryStatus,
    Enqueued,
    FinishedQuery,
    HeartbeatReply,
    ListQuery,
    NewJob,
    Page,
    ScheduleState,
    Store,
    WorkerInfo,
    WorkflowRecord,
    WorkflowState,
    delivery_notices,
    notices_for,
    status_after_attempt,
    webhook_deliveries,
)
from jobwire.store.insight import Timing
from jobwire.throttle import Limit, combined, refusal

T = TypeVar("T")

_REAP_BATCH = 500  # as many expired leases as one reap handles, like the SQLite store


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _stored(job: Job) -> Job:
    """The job as a store that keeps JSON would give it back."""
    progress = job.progress
    if progress is not None:
        progress = Progress(**_json(progress.as_dict()))
    return dataclasses.replace(
        job,
        args=_json(job.args),
        result=_json(job.result),
        error=_json(job.error),
        options=_json(job.options),
        progress=progress,
    )


@dataclass
class _Tx:
    """One operation's writes, staged until it commits."""

    store: MemoryStore
    now: float
    jobs: dict[str, Job] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    keys: dict[tuple[str, str], tuple[str | None, str]] = field(default_factory=dict)
    changed: list[Job] = field(default_factory=list)
    deliveries: dict[str, Delivery] = field(default_factory=dict)  # new or changed
    outbox: list[str] = field(default_factory=list)  # jobs given webhook deliveries
    tally: job_stats.Tally = field(default_factory=job_stats.Tally)

    def find(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id) or self.store._jobs.get(job_id)

    def load(self, job_id: str) -> Job:
        job = self.find(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def put(self, job: Job) -> Job:
        stored = _stored(job)
        self.jobs[job.id] = stored
        return stored

    def apply(self, change: model.Change) -> Job:
        self.tally.add(self.find(change.job.id), change)
        stored = self.put(change.job)
        events = tuple(dataclasses.replace(e, data=_json(e.data)) for e in change.events)
        self.events.extend(events)
        self.changed.append(stored)
        # The outbox entries are staged with the events: committed together or not at all.
        new = webhook_deliveries(model.Change(stored, events), self.now, self._disabled)
        for delivery in new:
            self.deliveries[delivery.id] = delivery
        if new:
            self.outbox.append(stored.id)
        return stored

    def delivery(self, delivery_id: str) -> Delivery | None:
        return self.deliveries.get(delivery_id) or self.store._deliveries.get(delivery_id)

    def _disabled(self, job_id: str, url: str) -> bool:
        return any(
            d.job_id == job_id and d.url == url and d.status is DeliveryStatus.DISABLED
            for d in (*self.store._deliveries.values(), *self.deliveries.values())
        )


class MemoryStore(Store):
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self._lock = asyncio.Lock()
        self._open = False
        self._jobs: dict[str, Job] = {}
        self._events: dict[str, list[Event]] = {}
        # (owner, idempotency key) → (fingerprint, job id)
        self._keys: dict[tuple[str, str], tuple[str | None, str]] = {}
        self._cursor = 0  # store-wide, only grows
        self._all_events: list[Event] = []  # in cursor order, for feed()
        self._deliveries: dict[str, Delivery] = {}  # the webhook outbox, in creation order
        self._stats: dict[job_stats.StatKey, float] = {}
        self._workers: dict[str, WorkerInfo] = {}
        self._names: dict[str, float] = {}  # job name → when last registered
        self._schedules: dict[str, ScheduleState] = {}
        self._workflows: dict[str, WorkflowRecord] = {}
        # Rate limits: per key, the times of the starts granted (oldest first) and the
        # running holders with their expiry.
        self._starts: dict[str, list[float]] = {}
        self._holders: dict[str, dict[str, float]] = {}

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._jobs)} jobs)"

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def ping(self) -> None:
        self._check_open()

    # -- plumbing ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if not self._open:
            raise StoreUnavailable("the store is not open")

    async def _write(self, op: Callable[[_Tx], T]) -> T:
        self._check_open()
        async with self._lock:
            tx = _Tx(self, self._clock())
            result = op(tx)  # raises before anything is committed
            self._commit(tx)
        self._notify(notices_for(tx.changed) + delivery_notices(tx.outbox))
        return result

    def _commit(self, tx: _Tx) -> None:
        self._jobs.update(tx.jobs)
        for event in tx.events:
            self._cursor += 1
            log = self._events.setdefault(event.job_id, [])
            numbered = dataclasses.replace(event, cursor=self._cursor)
            log.append(numbered)
            self._all_events.append(numbered)
        self._keys.update(tx.keys)
        self._deliveries.update(tx.deliveries)
        for key, delta in tx.tally.totals().items():
            self._stats[key] = self._stats.get(key, 0) + delta

    async def _read(self, fn: Callable[[], T]) -> T:
        self._check_open()
        async with self._lock:
            return fn()

    # -- producing ---------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Enqueued]:
        return await self._write(lambda tx: [self._enqueue_one(tx, new) for new in jobs])

    def _enqueue_one(self, tx: _Tx, new: NewJob) -> Enqueued:
        key = None if new.idempotency_key is None else (new.owner, new.idempotency_key)
        if key is not None:
            seen = tx.keys.get(key) or self._keys.get(key)
            existing = None if seen is None else tx.find(seen[1])
            if seen is not None and existing is not None:
                if seen[0] != new.fingerprint:
                    raise IdempotencyConflict(key[1])
                return Enqueued(existing, created=False)
        taken = tx.find(new.id)
        if taken is not None:
            raise InvalidTransition(new.id, taken.state.value, "enqueue it twice")
        job = Job(
            id=new.id,
            job=new.job,
            args=new.args,
            queue=new.queue,
            owner=new.owner,
            priority=new.priority,
            max_attempts=new.max_attempts,
            timeout=new.timeout,
            created_at=tx.now,
            scheduled_at=tx.now if new.scheduled_at is None else new.scheduled_at,
            idempotency_key=new.idempotency_key,
            options=new.options,
        )
        stored = tx.apply(model.enqueue(job, tx.now))
        if key is not None:
            tx.keys[key] = (new.fingerprint, new.id)
        return Enqueued(stored, created=True)

    # -- working -----------------------------------------------------------------------

    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        names: Sequence[str],
        limit: int,
        lease: float,
    ) -> list[Claim]:
        if limit <= 0 or not queues or not names:
            return []

        def op(tx: _Tx) -> list[Claim]:
            due = [
                job
                for job in self._jobs.values()
                if job.state is State.QUEUED
                and job.queue in queues
                and job.job in names
                and job.scheduled_at <= tx.now
            ]
            due.sort(key=lambda job: (-job.priority, job.scheduled_at, job.id))
            claims = []
            for job in due[:limit]:
                token = new_token()
                change = model.claim(job, worker_id, token, tx.now, lease)
                claims.append(Claim(tx.apply(change), token))
            return claims

        return await self._write(op)

    async def heartbeat(
        self, worker_id: str, tokens: Mapping[str, str], lease: float
    ) -> HeartbeatReply:
        if not tokens:
            return HeartbeatReply(frozenset(), frozenset())

        def op(tx: _Tx) -> HeartbeatReply:
            lost, cancel = set(), set()
            for job_id, token in tokens.items():
                try:
                    job = tx.load(job_id)
                    change = model.heartbeat(job, token, tx.now, lease)
                except JobwireError:
                    lost.add(job_id)
                    continue
                tx.put(change.job)  # a longer lease is not news: no notice
                if job.cancel_requested:
                    cancel.add(job_id)
            return HeartbeatReply(frozenset(lost), frozenset(cancel))

        return await self._write(op)

    async def report(self, job_id: str, token: str, events: Sequence[EventDraft]) -> None:
        if not events:
            return
        drafts = list(events)

        def op(tx: _Tx) -> None:
            tx.apply(model.report(tx.load(job_id), token, drafts, tx.now))

        await self._write(op)

    async def finish(self, job_id: str, token: str, result: Any) -> Job:
        return await self._write(
            lambda tx: tx.apply(model.succeed(tx.load(job_id), token, result, tx.now))
        )

    async def fail(
        self,
        job_id: str,
        token: str,
        error: dict[str, Any],
        retry_at: float | None,
        *,
        charge: bool = True,
    ) -> Job:
        return await self._write(
            lambda tx: tx.apply(model.fail(tx.load(job_id), token, error, tx.now, retry_at, charge))
        )

    async def release(self, job_id: str, token: str, due_at: float | None = None) -> Job:
        return await self._write(
            lambda tx: tx.apply(model.release(tx.load(job_id), token, tx.now, due_at))
        )

    async def mark_cancelled(
        self, job_id: str, token: str, reason: str = model.CANCELLED_WHILE_RUNNING
    ) -> Job:
        return await self._write(
            lambda tx: tx.apply(model.cancelled(tx.load(job_id), token, tx.now, reason))
        )

    # -- controlling -------------------------------------------------------------------

    async def cancel_expired(self, job_id: str) -> Job:
        return await self._write(
            lambda tx: tx.apply(model.expire_unstarted(tx.load(job_id), tx.now))
        )

    async def cancel(self, job_id: str, owner: str | None = None) -> Job:
        def op(tx: _Tx) -> Job:
            job = tx.load(job_id)
            if owner is not None and job.owner != owner:
                raise JobNotFound(job_id)
            return tx.apply(model.request_cancel(job, tx.now))

        return await self._write(op)

    # -- reading -----------------------------------------------------------------------

    async def get(self, job_id: str, owner: str | None = None) -> Job | None:
        job = await self._read(lambda: self._jobs.get(job_id))
        if job is None or (owner is not None and job.owner != owner):
            return None
        return job

    async def list(self, query: ListQuery) -> Page:
        limit = max(1, query.limit)

        def fetch() -> list[Job]:
            return [
                job
                for job in self._jobs.values()
                if (query.owner is None or job.owner == query.owner)
                and (query.job is None or job.job == query.job)
                and (query.queue is None or job.queue == query.queue)
                and (not query.states or job.state in query.states)
                and (query.before_id is None or job.id < query.before_id)
            ]

        jobs = sorted(await self._read(fetch), key=lambda job: job.id, reverse=True)
        items = jobs[:limit]
        return Page(items, items[-1].id if len(jobs) > limit else None)

    async def events(self, job_id: str, after: int = 0, limit: int = 1000) -> builtins.list[Event]:
        def fetch() -> list[Event]:
            return [e for e in self._events.get(job_id, ()) if e.seq > after][: max(0, limit)]

        return await self._read(fetch)

    async def feed(
        self, after: int, owner: str | None = None, limit: int = 1000
    ) -> builtins.list[Event]:
        def fetch() -> list[Event]:
            start = bisect.bisect_right(self._all_events, after, key=lambda e: e.cursor)
            found = (
                event
                for event in itertools.islice(self._all_events, start, None)
                if owner is None or self._jobs[event.job_id].owner == owner
            )
            return list(itertools.islice(found, max(0, limit)))

        return await self._read(fetch)

    async def last_cursor(self) -> int:
        return await self._read(lambda: self._cursor)

    async def next_due(self, queues: Sequence[str], names: Sequence[str]) -> float | None:
        def fetch() -> float | None:
            return min(
                (
                    job.scheduled_at
                    for job in self._jobs.values()
                    if job.state is State.QUEUED and job.queue in queues and job.job in names
                ),
                default=None,
            )

        return await self._read(fetch)

    # -- maintenance -------------------------------------------------------------------

    async def reap(self, now: float | None = None) -> builtins.list[Job]:
        def op(tx: _Tx) -> list[Job]:
            at = tx.now if now is None else now
            expired = [
                job
                for job in self._jobs.values()
                if job.state is State.RUNNING
                and job.lease_expires_at is not None
                and job.lease_expires_at <= at
            ]
            return [tx.apply(model.expire(job, at)) for job in expired[:_REAP_BATCH]]

        return await self._write(op)

    async def prune(self, finished_before: float) -> int:
        return await self.purge(FinishedQuery(finished_before=finished_before))

    async def purge(self, query: FinishedQuery) -> int:
        def op(tx: _Tx) -> int:
            # Deleting cannot fail halfway, so it needs no staging.
            doomed = {job.id for job in self._jobs.values() if query.matches(job)}
            for job_id in doomed:
                gone = self._jobs[job_id]
                counter = (gone.queue, gone.job, f"state:{gone.state.value}")
                self._stats[counter] = self._stats.get(counter, 0) - 1
                del self._jobs[job_id]
                self._events.pop(job_id, None)
            if doomed:
                self._all_events = [e for e in self._all_events if e.job_id not in doomed]
                self._deliveries = {
                    k: d for k, d in self._deliveries.items() if d.job_id not in doomed
                }
            for key, (_, job_id) in list(self._keys.items()):
                if job_id in doomed:
                    del self._keys[key]
            return len(doomed)

        return await self._write(op)

    # -- the dashboard -----------------------------------------------------------------

    async def timings(
        self, since: float, owner: str | None = None, limit: int = 20_000
    ) -> builtins.list[Timing]:
        def fetch() -> list[Timing]:
            found = [
                Timing(job.queue, job.state, job.scheduled_at, job.started_at, job.finished_at)
                for job in self._jobs.values()
                if job.terminal
                and job.finished_at is not None
                and job.finished_at >= since
                and (owner is None or job.owner == owner)
            ]
            found.sort(key=lambda t: t.finished_at, reverse=True)
            return found[: max(0, limit)]

        return await self._read(fetch)

    async def oldest_queued(self, now: float, owner: str | None = None) -> dict[str, float]:
        def fetch() -> dict[str, float]:
            oldest: dict[str, float] = {}
            for job in self._jobs.values():
                if (
                    job.state is State.QUEUED
                    and job.scheduled_at <= now
                    and (owner is None or job.owner == owner)
                ):
                    oldest[job.queue] = min(
                        oldest.get(job.queue, job.scheduled_at), job.scheduled_at
                    )
            return oldest

        return await self._read(fetch)

    async def count_finished(self, query: FinishedQuery) -> int:
        return await self._read(lambda: sum(1 for job in self._jobs.values() if query.matches(job)))

    async def idempotent_job(self, owner: str, key: str) -> str | None:
        def fetch() -> str | None:
            seen = self._keys.get((owner, key))
            return None if seen is None else seen[1]

        return await self._read(fetch)

    # -- webhook outbox ----------------------------------------------------------------

    async def claim_deliveries(self, limit: int, lease: float) -> builtins.list[Delivery]:
        if limit <= 0:
            return []

        def op(tx: _Tx) -> list[Delivery]:
            due = [
                d
                for d in self._deliveries.values()
                if d.status is DeliveryStatus.PENDING
                and d.next_attempt_at is not None
                and d.next_attempt_at <= tx.now
                and (d.lease_expires_at is None or d.lease_expires_at <= tx.now)
            ]
            due.sort(key=lambda d: (d.next_attempt_at or 0.0, d.id))
            claimed = []
            for delivery in due[:limit]:
                leased = dataclasses.replace(
                    delivery, claim_token=new_token(), lease_expires_at=tx.now + lease
                )
                tx.deliveries[leased.id] = leased
                claimed.append(leased)
            return claimed

        return await self._write(op)

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
        status = status_after_attempt(ok, disable_url, next_attempt_at)

        def op(tx: _Tx) -> Delivery:
            current = tx.delivery(delivery_id)
            if (
                current is None
                or current.claim_token != token
                or current.status is not DeliveryStatus.PENDING
            ):
                raise StaleClaim(delivery_id)
            recorded = dataclasses.replace(
                current,
                status=status,
                attempts=current.attempts + 1,
                next_attempt_at=next_attempt_at if status is DeliveryStatus.PENDING else None,
                last_attempt_at=tx.now,
                last_status_code=status_code,
                last_error=error,
                claim_token=None,
                lease_expires_at=None,
            )
            tx.deliveries[delivery_id] = recorded
            counter = job_stats.webhook_key(ok)
            self._stats[counter] = self._stats.get(counter, 0) + 1
            if status is DeliveryStatus.DISABLED:
                reason = f"disabled: delivery {delivery_id} to this URL was answered 410 Gone"
                for other in self._deliveries.values():
                    if (
                        other.job_id == current.job_id
                        and other.url == current.url
                        and other.status is DeliveryStatus.PENDING
                        and other.id != delivery_id
                    ):
                        tx.deliveries[other.id] = dataclasses.replace(
                            other,
                            status=DeliveryStatus.DISABLED,
                            next_attempt_at=None,
                            claim_token=None,
                            lease_expires_at=None,
                            last_error=reason,
                        )
            return recorded

        return await self._write(op)

    async def deliveries_for(self, job_id: str) -> builtins.list[Delivery]:
        def fetch() -> list[Delivery]:
            found = [d for d in self._deliveries.values() if d.job_id == job_id]
            return sorted(found, key=lambda d: (d.seq, d.url))

        return await self._read(fetch)

    async def next_delivery_at(self) -> float | None:
        def fetch() -> float | None:
            return min(
                (
                    max(d.next_attempt_at, d.lease_expires_at or 0.0)
                    for d in self._deliveries.values()
                    if d.status is DeliveryStatus.PENDING and d.next_attempt_at is not None
                ),
                default=None,
            )

        return await self._read(fetch)

    # -- statistics --------------------------------------------------------------------

    async def stat_rows(self) -> builtins.list[job_stats.StatRow]:
        return await self._read(lambda: [(*key, value) for key, value in self._stats.items()])

    # -- worker registry ---------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo) -> None:
        def op() -> None:
            self._workers[info.id] = info

        await self._read(op)

    async def worker_heartbeat(self, worker_id: str, running: Sequence[str], now: float) -> bool:
        def op() -> bool:
            info = self._workers.get(worker_id)
            if info is None:
                return False
            self._workers[worker_id] = dataclasses.replace(
                info, last_heartbeat=now, running=tuple(running)
            )
            return True

        return await self._read(op)

    async def deregister_worker(self, worker_id: str) -> None:
        await self._read(lambda: self._workers.pop(worker_id, None))

    async def list_workers(self) -> builtins.list[WorkerInfo]:
        return await self._read(lambda: sorted(self._workers.values(), key=lambda w: w.id))

    async def prune_workers(self, last_heartbeat_before: float) -> int:
        def op() -> int:
            gone = [w for w, i in self._workers.items() if i.last_heartbeat < last_heartbeat_before]
            for worker_id in gone:
                del self._workers[worker_id]
            return len(gone)

        return await self._read(op)

    # -- known job names ---------------------------------------------------------------

    async def record_job_names(self, names: Sequence[str], now: float) -> None:
        def op() -> None:
            for name in names:
                self._names[name] = max(now, self._names.get(name, now))

        await self._read(op)

    async def job_names(self) -> dict[str, float]:
        return await self._read(lambda: dict(sorted(self._names.items())))

    # -- schedules ---------------------------------------------------------------------

    async def track_schedules(self, names: Sequence[str], now: float) -> dict[str, ScheduleState]:
        def op() -> dict[str, ScheduleState]:
            for name in names:
                self._schedules.setdefault(name, ScheduleState(name, since=now, updated_at=now))
            return {name: self._schedules[name] for name in names}

        return await self._read(op)

    async def record_schedule_fire(
        self, name: str, fire_at: float, job_id: str, now: float
    ) -> None:
        def op() -> None:
            state = self._schedules.get(name) or ScheduleState(name, since=fire_at)
            self._schedules[name] = state.fired(fire_at, job_id, now)

        await self._read(op)

    async def acquire_permit(
        self, limits: Sequence[Limit], holder: str, expires_at: float, now: float
    ) -> float | None:
        def op() -> float | None:
            views = []
            for limit in limits:
                starts = [t for t in self._starts.get(limit.key, []) if t > now - limit.period]
                self._starts[limit.key] = starts
                held = self._holders.setdefault(limit.key, {})
                for name in [h for h, until in held.items() if until <= now]:
                    del held[name]
                others = [until for h, until in held.items() if h != holder]
                views.append(refusal(limit, starts, others, now))
            retry_at = combined(views)
            if retry_at is not None:
                return retry_at
            for limit in limits:
                if limit.rate is not None:
                    self._starts[limit.key].append(now)
                if limit.concurrency is not None:
                    self._holders[limit.key][holder] = expires_at
            return None

        return await self._read(op)

    async def renew_permits(self, held: Sequence[tuple[str, str]], expires_at: float) -> None:
        def op() -> None:
            for key, holder in held:
                holders = self._holders.get(key, {})
                if holder in holders:
                    holders[holder] = expires_at

        await self._read(op)

    async def release_permit(self, keys: Sequence[str], holder: str) -> None:
        def op() -> None:
            for key in keys:
                self._holders.get(key, {}).pop(holder, None)

        await self._read(op)

    async def set_schedule_paused(self, name: str, paused: bool, now: float) -> ScheduleState:
        def op() -> ScheduleState:
            state = self._schedules.get(name) or ScheduleState(name, since=now)
            self._schedules[name] = state = state.pausing(paused, now)
            return state

        return await self._read(op)

    # -- workflows ---------------------------------------------------------------------

    async def create_workflow(self, workflow: WorkflowRecord) -> None:
        def op() -> None:
            self._workflows[workflow.id] = workflow

        await self._read(op)

    async def get_workflow(
        self, workflow_id: str, owner: str | None = None
    ) -> WorkflowRecord | None:
        def op() -> WorkflowRecord | None:
            found = self._workflows.get(workflow_id)
            return found if found is not None and owner in (None, found.owner) else None

        return await self._read(op)

    async def open_workflows(self, limit: int = 1000) -> builtins.list[WorkflowRecord]:
        def op() -> builtins.list[WorkflowRecord]:
            running = [w for w in self._workflows.values() if w.state is WorkflowState.RUNNING]
            return sorted(running, key=lambda w: (w.created_at, w.id))[:limit]

        return await self._read(op)

    async def end_workflow(
        self, workflow_id: str, state: WorkflowState, now: float
    ) -> WorkflowRecord | None:
        def op() -> WorkflowRecord | None:
            found = self._workflows.get(workflow_id)
            if found is None or found.state is not WorkflowState.RUNNING:
                return None
            ended = dataclasses.replace(found, state=state, updated_at=now)
            self._workflows[workflow_id] = ended
            return ended

        return await self._read(op)
