"""Random sequences of job operations against each store, checking the rules after every step.

Each step states what the store must answer given what it held just before, and the
invariants read the whole store back after every step. Time is steered without sleeping:
a lease of 0 s has run out as soon as it is granted, so ``reap(now=time.time())``
expires it, and ``reap(now=<far future>)`` expires every lease.

Workers act in two ways: the current holder of a running job (so that jobs really move
through their lives), and a worker using any claim ever handed out, which is mostly a
zombie whose token is stale (so that fencing is tried on every state).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from jobwire.errors import AlreadyTerminal, IdempotencyConflict, JobNotFound, StaleClaim
from jobwire.model import (
    CRASH_SPREAD_SECONDS,
    STATE_EVENT,
    Event,
    EventDraft,
    EventType,
    Job,
    State,
)
from jobwire.store.base import ListQuery, NewJob, Store

T = TypeVar("T")
StoreFactory = Callable[[Path], Store]  # as registered in conftest.STORES
Held = tuple[str, str]  # (job id, claim token) as a worker holds it, maybe stale by now

HOUR = 3600.0
FAR_FUTURE = 100 * HOUR
NAMES = ("crunch", "crawl")
QUEUES = ("default", "cpu")
OWNERS = ("alice", "bob")
LEASES = (0.0, HOUR)  # run out at once, or outlive the example
MAX_JOBS = 10  # enough to contend; more only slows the checks

WORKER_ACTIONS = (
    "heartbeat",
    "report progress",
    "report output",
    "finish",
    "fail",
    "retry now",
    "retry later",
    "retry uncharged",
    "release",
    "mark cancelled",
    "mark expired",
)

job_specs = st.fixed_dictionaries(
    {
        "job": st.sampled_from(NAMES),
        "queue": st.sampled_from(QUEUES),
        "priority": st.sampled_from([0, 1, 5]),
        "max_attempts": st.integers(1, 3),
        "schedule": st.sampled_from(["now", "now", "past", "past", "future"]),
        "owner": st.sampled_from(OWNERS),
        "key": st.sampled_from([None, None, None, "k1", "k2"]),
        "fingerprint": st.sampled_from(["f1", "f2"]),
    }
)


class StoreMachine(RuleBasedStateMachine):
    jobs = Bundle("jobs")
    claims = Bundle("claims")

    def __init__(self, factory: StoreFactory) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="jobwire-machine-"))
        try:
            self.store: Store = factory(self.directory)
        except BaseException:  # a factory skips when its engine is not available here
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        self.loop = asyncio.new_event_loop()
        self.serial = 0
        self.ids: set[str] = set()
        self.keys: dict[tuple[str, str], tuple[str | None, str]] = {}  # → (fingerprint, id)
        self.tokens: set[str] = set()
        self.finished: dict[str, Job] = {}  # terminal jobs as first seen terminal
        # As of the last invariant check: the current holders, and whether any job is due.
        self.running: list[Held] = []
        self.due = False
        # The SQLite writer resolves futures on the loop that opened it: this one.
        self.run(self.store.open())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    def next_id(self) -> str:
        """Ids in creation order. Random ids would break claim ties differently on each
        run of an example, and so change which rules Hypothesis can choose next."""
        self.serial += 1
        return str(uuid.UUID(int=self.serial))

    # -- reading the store ---------------------------------------------------------------

    def all_jobs(self) -> dict[str, Job]:
        page = self.run(self.store.list(ListQuery(limit=10_000)))
        assert page.next_cursor is None
        return {job.id: job for job in page.items}

    def job(self, job_id: str) -> Job:
        job = self.run(self.store.get(job_id))
        assert job is not None
        return job

    @staticmethod
    def holds(job: Job, token: str) -> bool:
        return job.state is State.RUNNING and job.claim_token == token

    # -- rules ---------------------------------------------------------------------------

    @precondition(lambda self: len(self.ids) < MAX_JOBS)
    @rule(target=jobs, specs=st.lists(job_specs, min_size=1, max_size=3))
    def enqueue(self, specs: list[dict[str, Any]]) -> Any:
        now = time.time()
        scheduled = {"now": None, "past": now - 60, "future": now + FAR_FUTURE}
        batch = [
            NewJob(
                id=self.next_id(),
                job=spec["job"],
                args={"spec": spec},
                queue=spec["queue"],
                priority=spec["priority"],
                max_attempts=spec["max_attempts"],
                scheduled_at=scheduled[spec["schedule"]],
                owner=spec["owner"],
                idempotency_key=spec["key"],
                fingerprint=spec["fingerprint"],
            )
            for spec in specs
        ]
        # What the store must answer: a known key returns its job, or conflicts.
        keys = dict(self.keys)
        existing: list[str | None] = []  # None: created anew
        for item in batch:
            key = None if item.idempotency_key is None else (item.owner, item.idempotency_key)
            if key is None or key not in keys:
                existing.append(None)
                if key is not None:
                    keys[key] = (item.fingerprint, item.id)
            elif keys[key][0] != item.fingerprint:
                event("enqueue: idempotency conflict")
                try:
                    self.run(self.store.enqueue(batch))
                except IdempotencyConflict:
                    pass
                else:
                    raise AssertionError("a reused key with another fingerprint was accepted")
                assert self.all_jobs().keys() == self.ids  # all or none
                return multiple()
            else:
                existing.append(keys[key][1])
        enqueued = self.run(self.store.enqueue(batch))
        created = []
        for item, result, found in zip(batch, enqueued, existing, strict=True):
            assert result.created is (found is None)
            assert result.job.id == (found or item.id)
            if result.created:
                assert result.job.state is State.QUEUED and result.job.last_seq == 1
                created.append(item.id)
        self.keys = keys
        self.ids.update(created)
        return multiple(*created)

    @precondition(lambda self: self.due)
    @rule(
        target=claims,
        worker=st.sampled_from(["w1", "w2"]),
        queues=st.sampled_from([QUEUES, QUEUES, QUEUES, QUEUES[:1], QUEUES[1:], ()]),
        names=st.sampled_from([NAMES, NAMES, NAMES, NAMES[:1], NAMES[1:], ()]),
        limit=st.sampled_from([1, 1, 2, 3, 0]),
        lease=st.sampled_from(LEASES),
    )
    def claim(
        self,
        worker: str,
        queues: tuple[str, ...],
        names: tuple[str, ...],
        limit: int,
        lease: float,
    ) -> Any:
        before = self.all_jobs()
        now = time.time()
        due = [
            job
            for job in before.values()
            if job.state is State.QUEUED
            and job.queue in queues
            and job.job in names
            and job.scheduled_at <= now
        ]
        due.sort(key=lambda job: (-job.priority, job.scheduled_at, job.id))
        claims = self.run(self.store.claim(worker, queues, names, limit, lease))
        event(f"claim: {min(len(claims), 2)}+ claimed")
        assert [c.job.id for c in claims] == [job.id for job in due[:limit]]
        for claim in claims:
            assert claim.token not in self.tokens, "a claim token was handed out twice"
            self.tokens.add(claim.token)
            assert claim.job == self.job(claim.job.id)
            assert claim.job.state is State.RUNNING and claim.job.claim_token == claim.token
            assert claim.job.attempts == before[claim.job.id].attempts + 1
        return multiple(*[(c.job.id, c.token) for c in claims])

    @precondition(lambda self: bool(self.running))
    @rule(
        pick=st.integers(0, 9),
        cancel_first=st.booleans(),
        action=st.sampled_from(WORKER_ACTIONS),
    )
    def a_running_job_is_acted_on(self, pick: int, cancel_first: bool, action: str) -> None:
        """A client may ask to cancel it; then its current holder writes."""
        held = self.running[pick % len(self.running)]
        if cancel_first:
            self.cancel(held[0], "its owner")
        self.act(held, action)

    @rule(held=claims, action=st.sampled_from(WORKER_ACTIONS))
    def a_worker_uses_an_earlier_claim(self, held: Held, action: str) -> None:
        """Mostly a zombie: the job finished or was claimed again since."""
        self.act(held, action)

    @rule(first=claims, more=st.lists(claims, max_size=2), lease=st.sampled_from(LEASES))
    def a_worker_heartbeats_several_jobs(self, first: Held, more: list[Held], lease: float) -> None:
        self.heartbeat(dict([first, *more]), lease)

    @precondition(lambda self: bool(self.running))
    @rule(when=st.sampled_from(["now", "now", "far future"]))
    def leases_expire(self, when: str) -> None:
        before = self.all_jobs()
        at = time.time() + (FAR_FUTURE if when == "far future" else 0.0)
        expired = {
            job.id
            for job in before.values()
            if job.state is State.RUNNING
            and job.lease_expires_at is not None
            and job.lease_expires_at <= at
        }
        reaped = self.run(self.store.reap(now=at))
        event(f"reap at {when}: {min(len(reaped), 2)}+ expired")
        assert {job.id for job in reaped} == expired
        for job in reaped:
            old = before[job.id]
            assert job == self.job(job.id)
            assert job.claim_token is None
            if old.cancel_requested:
                assert job.state is State.CANCELLED and job.attempts == old.attempts
            elif old.crashes + 1 < old.max_crashes:
                # A lost lease is not the job's fault: handed back uncharged.
                assert job.state is State.QUEUED
                assert at <= job.scheduled_at <= at + CRASH_SPREAD_SECONDS
                assert job.attempts == old.attempts - 1 and job.crashes == old.crashes + 1
                assert job.error is not None and job.error["type"] == "LeaseExpired"
            else:
                assert job.state is State.FAILED and job.crashes == old.max_crashes
                assert job.error is not None and job.error["type"] == "CrashBudgetExhausted"

    @rule(job_id=jobs, who=st.sampled_from(["anyone", "its owner", "a stranger"]))
    def a_client_cancels(self, job_id: str, who: str) -> None:
        self.cancel(job_id, who)

    # -- what each action must do --------------------------------------------------------

    def act(self, held: Held, action: str) -> None:
        job_id, token = held
        before = self.job(job_id)
        current = self.holds(before, token)
        asked = ", cancel requested" if before.cancel_requested else ""
        event(f"{action}: {'current' if current else 'stale'} token, {before.state}{asked}")
        if action == "heartbeat":
            self.heartbeat({job_id: token}, HOUR)
            return
        write = self.write(held, action)
        if not current:
            try:
                self.run(write)
            except StaleClaim:
                pass
            else:
                raise AssertionError(f"{action} with a stale token was accepted: {before}")
            assert self.job(job_id) == before
            return
        self.run(write)
        self.check_write(before, self.job(job_id), action)

    def write(self, held: Held, action: str) -> Coroutine[Any, Any, Any]:
        error = {"type": "Boom", "message": "no"}
        now = time.time()
        if action.startswith("report"):
            kind = EventType.PROGRESS if action == "report progress" else EventType.OUTPUT
            return self.store.report(*held, [EventDraft(kind, {"current": 3, "total": 9})])
        return {
            "finish": lambda: self.store.finish(*held, {"ok": [1, 2]}),
            "fail": lambda: self.store.fail(*held, error, None),
            "retry now": lambda: self.store.fail(*held, error, now - 1),
            "retry later": lambda: self.store.fail(*held, error, now + FAR_FUTURE),
            "retry uncharged": lambda: self.store.fail(*held, error, now - 1, charge=False),
            "release": lambda: self.store.release(*held),
            "mark cancelled": lambda: self.store.mark_cancelled(*held),
            "mark expired": lambda: self.store.mark_cancelled(*held, "expired"),
        }[action]()

    @staticmethod
    def check_write(before: Job, after: Job, action: str) -> None:
        if action.startswith("report"):
            assert after.state is State.RUNNING and after.last_seq == before.last_seq + 1
            if action == "report progress":
                assert after.progress is not None and after.progress.current == 3
            else:
                assert after.progress == before.progress
        elif action == "finish":
            assert after.state is State.SUCCEEDED and after.result == {"ok": [1, 2]}
        elif action == "retry uncharged":
            assert after.error == {"type": "Boom", "message": "no"}
            if before.cancel_requested:
                assert after.state is State.CANCELLED and after.attempts == before.attempts
            else:
                assert after.state is State.QUEUED and after.attempts == before.attempts - 1
        elif action.startswith(("fail", "retry")):
            assert after.error == {"type": "Boom", "message": "no"}
            assert after.attempts == before.attempts
            if action == "fail" or before.attempts >= before.max_attempts:
                assert after.state is State.FAILED
            elif before.cancel_requested:
                assert after.state is State.CANCELLED
            else:
                assert after.state is State.QUEUED
        elif action == "release":
            if before.cancel_requested:
                assert after.state is State.CANCELLED and after.attempts == before.attempts
            else:
                assert after.state is State.QUEUED and after.attempts == before.attempts - 1
        else:
            assert action.startswith("mark") and after.state is State.CANCELLED

    def heartbeat(self, tokens: dict[str, str], lease: float) -> None:
        before = {job_id: self.job(job_id) for job_id in tokens}
        reply = self.run(self.store.heartbeat("w1", tokens, lease))
        lost = {i for i, token in tokens.items() if not self.holds(before[i], token)}
        assert reply.lost == lost
        asked = {i for i in tokens if i not in lost and before[i].cancel_requested}
        assert reply.cancel_requested == asked
        for job_id in tokens:
            after = self.job(job_id)
            if job_id in lost:
                assert after == before[job_id]
            else:
                assert after.lease_expires_at is not None
                assert after.last_seq == before[job_id].last_seq

    def cancel(self, job_id: str, who: str) -> None:
        before = self.job(job_id)
        event(f"cancel by {who}: {before.state}")
        owner = {"anyone": None, "its owner": before.owner, "a stranger": "mallory"}[who]
        try:
            job = self.run(self.store.cancel(job_id, owner=owner))
        except JobNotFound:
            assert who == "a stranger"
        except AlreadyTerminal:
            assert who != "a stranger" and before.terminal
        else:
            assert who != "a stranger" and not before.terminal
            if before.state is State.QUEUED:
                assert job.state is State.CANCELLED
            else:
                assert job.state is State.RUNNING and job.cancel_requested
                assert job.claim_token == before.claim_token
            return
        assert self.job(job_id) == before

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def every_job_obeys_the_rules(self) -> None:
        jobs = self.all_jobs()
        assert jobs.keys() == self.ids
        logs, feed, last_cursor = self.run(self.read_logs(list(jobs)))
        for job in jobs.values():
            self.check_record(job)
            self.check_log(job, logs[job.id])
        # The store-wide feed is every job's log, merged in cursor order.
        merged = sorted((e for log in logs.values() for e in log), key=lambda e: e.cursor)
        assert feed == merged
        assert last_cursor == (merged[-1].cursor if merged else 0)
        self.check_stats(jobs, logs)
        self.running = sorted(
            (job.id, job.claim_token) for job in jobs.values() if job.claim_token is not None
        )
        now = time.time()
        self.due = any(
            job.state is State.QUEUED and job.scheduled_at <= now for job in jobs.values()
        )

    def check_stats(self, jobs: dict[str, Job], logs: dict[str, list[Event]]) -> None:
        """The maintained counters agree with the jobs and their logs, read the slow way."""
        stats = self.run(self.store.stats())
        states: dict[tuple[str, str], dict[State, int]] = {}
        started: dict[tuple[str, str], int] = {}
        for job in jobs.values():
            group = (job.queue, job.job)
            states.setdefault(group, dict.fromkeys(State, 0))[job.state] += 1
            started[group] = started.get(group, 0) + sum(
                e.type is EventType.STARTED for e in logs[job.id]
            )
        assert {(s.queue, s.job): s.states for s in stats} == states
        assert {(s.queue, s.job): s.totals["started"] for s in stats} == started
        assert all(s.wait.count == s.totals["started"] for s in stats)

    def check_record(self, job: Job) -> None:
        running = job.state is State.RUNNING
        # A live lease (a claim token) only while running, and then exactly one.
        assert (job.claim_token is not None) == running, job
        assert (job.lease_expires_at is not None) == running, job
        assert (job.worker_id is not None) == running, job
        assert 0 <= job.attempts <= job.max_attempts, job
        assert (job.finished_at is not None) == job.terminal, job
        assert not (job.state is State.QUEUED and job.cancel_requested), job
        # Terminal states absorb: once terminal, the record never changes again.
        if job.id in self.finished:
            assert job == self.finished[job.id]
        elif job.terminal:
            self.finished[job.id] = job

    async def read_logs(
        self, job_ids: list[str]
    ) -> tuple[dict[str, list[Event]], list[Event], int]:
        logs = await asyncio.gather(*(self.store.events(job_id) for job_id in job_ids))
        feed = await self.store.feed(after=0, limit=1_000_000)
        return dict(zip(job_ids, logs, strict=True)), feed, await self.store.last_cursor()

    def check_log(self, job: Job, events: list[Event]) -> None:
        # Gapless 1..last_seq, in store-wide order.
        assert [e.seq for e in events] == list(range(1, job.last_seq + 1)), job
        assert all(a.cursor < b.cursor for a, b in itertools.pairwise(events))
        assert events[0].type is EventType.QUEUED
        # The latest move recorded in the log is the move into the current state.
        moves = [e.type for e in events if e.type not in (EventType.PROGRESS, EventType.OUTPUT)]
        if job.state is State.QUEUED:
            assert moves[-1] in (EventType.QUEUED, EventType.RETRYING), (job, moves)
        else:
            assert moves[-1] is STATE_EVENT[job.state], (job, moves)
        # A terminal job has exactly one terminal event, and it is the last one.
        terminal = [e for e in events if e.type.terminal]
        assert len(terminal) == (1 if job.terminal else 0), (job, moves)
        assert not job.terminal or events[-1] is terminal[0], (job, moves)
        # Every claim is one attempt, except those handed back by a release or an uncharged
        # retry, or lost with their lease; every lost one is a crash.
        started = sum(e.type is EventType.STARTED for e in events)
        released = sum(e.type is EventType.QUEUED and "released" in e.data for e in events)
        uncharged = [e for e in events if e.type is EventType.RETRYING]
        released += sum(e.data.get("charged") is False for e in uncharged)
        lost = sum(e.type is EventType.QUEUED and e.data.get("lost") is True for e in events)
        assert job.attempts == started - released - lost, (job, moves)
        spent = (job.error or {}).get("type") == "CrashBudgetExhausted"  # the last one lost
        assert job.crashes == lost + (1 if spent else 0), (job, moves)


def test_random_operations_keep_every_rule(store_factory: StoreFactory) -> None:
    run_state_machine_as_test(
        lambda: StoreMachine(store_factory),
        settings=settings(
            max_examples=100,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
