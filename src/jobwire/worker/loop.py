"""The worker: claim what fits, run it, keep leases alive, and drain on stop.

It claims only as many jobs of each executor kind as that executor has free slots, so
a claimed job never waits behind others in this process while another worker idles.
It sleeps until a wake-up (new work, a freed slot, the next delayed job falling due,
stop) and re-checks the store at ``poll_seconds`` in case a wake-up was lost. When the
store is away it backs off (capped, jittered) and carries on when it is back.

New work wakes it through the store's ``jobs`` notices, which every worker hears, or,
where the store has a :class:`~jobwire.store.base.Doorbell` (Redis), through that: each
new job wakes one idle worker. It waits at the doorbell only for the job names it has
free slots for, so a busy worker leaves the wake-up to another; a wake-up it took while
told to stop goes back.

A lease is only as good as the last heartbeat the store answered. A worker cut off
from the store (a dead link, a half-open connection: a heartbeat that never returns)
keeps its own clock: once a lease has gone unrenewed for ``lease_seconds``, counted
from when the last renewal that succeeded was *sent*, the store may already have given
the job to another worker, so this one stops the attempt instead of running it beside
its successor. Fencing refuses whatever it still writes.

A job that would spend its crash budget at its next lost lease (see
:func:`jobwire.model.runs_alone`) runs alone: a claim that brings one hands the rest back
(uncharged), and the worker claims nothing more until it runs nothing, so that if the
process dies again, the job that killed it is the only one charged.

Rate limits (a job's ``rate_limit``/``concurrency``, a queue's ``limit_queue``) are a
gate between claim and run, held through the store (:mod:`jobwire.throttle`): each
claimed job takes a permit under its limits before it runs. A refused job goes back to
``queued`` uncharged, due when the store says a permit may be free, and this worker
claims nothing of that name (or queue) before then, so a limited name does not spin. The
permit is given back when the attempt ends, renewed with the lease, and expires with the
lease when its worker dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jobwire.errors import JobwireError, StoreUnavailable
from jobwire.feed.hub import Hub, Watch
from jobwire.ids import new_token
from jobwire.jobs import EXECUTORS, Executor
from jobwire.model import runs_alone
from jobwire.outage import STORE_BACKOFF, Outage
from jobwire.settings import Settings
from jobwire.store.base import Claim, Doorbell, Store, WorkerInfo
from jobwire.throttle import Limit, job_key, queue_key
from jobwire.worker.attempt import Attempt, StopReason
from jobwire.worker.executors import AsyncExecutor, ProcessExecutor, ThreadExecutor
from jobwire.worker.executors import Executor as ExecutorImpl
from jobwire.worker.watchdog import LoopLagWatchdog

if TYPE_CHECKING:
    from jobwire.jobs import JobSpec

log = logging.getLogger("jobwire.worker")


# A lost worker stays listed (marked lost) this long after its last heartbeat, then goes.
FORGET_LOST_WORKERS_AFTER = 3600.0


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_token()[:6]}"


def _version() -> str:
    try:
        return importlib.metadata.version("jobwire")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Worker:
    def __init__(
        self,
        registry: Mapping[str, JobSpec[Any, Any]],
        store: Store,
        hub: Hub,
        settings: Settings,
        *,
        queues: Sequence[str] | None = None,
        worker_id: str | None = None,
        queue_limits: Mapping[str, Limit] | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.hub = hub
        self.settings = settings
        self._limits = settings.limits
        self.queues = list(queues or settings.queues)
        self.id = worker_id or new_worker_id()
        self.attempts: dict[str, Attempt] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running_by_kind: dict[Executor, int] = dict.fromkeys(EXECUTORS, 0)
        self._executors: dict[Executor, ExecutorImpl] = {}
        self._stopping = asyncio.Event()
        self._wake: Watch | None = None
        self._doorbell: Doorbell | None = None
        self._main: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None  # the heartbeat in flight
        # When each running attempt's lease was last known good (monotonic clock).
        self._renewed: dict[str, float] = {}
        self._watchdog = LoopLagWatchdog(settings.loop_lag_warn_seconds, self._async_jobs)
        self.claimed = 0
        self._recording = Outage(log, f"worker {self.id}: recording outcomes")
        self._beat_outage = Outage(log, f"worker {self.id} heartbeat")
        self._started_at: float | None = None
        # A job that must run alone was claimed: claim nothing until nothing runs here.
        self._alone = False
        # Jobs claimed and not yet launched, and the cancels heard for them meanwhile.
        self._launching: set[str] = set()
        self._cancel_heard: set[str] = set()
        self.queue_limits = dict(queue_limits or {})
        # Rate limits: limit keys (job:NAME, queue:NAME) not to claim before a time
        # (epoch), and the concurrency keys each running job holds a permit under.
        self._blocked: dict[str, float] = {}
        self._permits: dict[str, list[str]] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        kinds = {spec.options.executor for spec in self.registry.values()}
        preload = sorted(
            {s.module for s in self.registry.values() if s.options.executor == "process"}
        )
        sizes = {
            "async": self.settings.async_concurrency,
            "thread": self.settings.thread_concurrency,
            "process": self.settings.process_concurrency,
        }
        for kind in kinds:
            executor: ExecutorImpl
            if kind == "async":
                executor = AsyncExecutor(sizes[kind])
            elif kind == "thread":
                executor = ThreadExecutor(sizes[kind])
            else:
                executor = ProcessExecutor(sizes[kind], preload=preload)
            await executor.start()
            self._executors[kind] = executor
        await self._register()
        loop = asyncio.get_running_loop()
        self._main = loop.create_task(self._claim_loop(), name=f"jobwire-worker-{self.id}")
        self._heartbeat = loop.create_task(self._heartbeat_loop(), name="jobwire-heartbeat")
        self._watchdog.start()
        log.info(
            "worker %s started: queues=%s jobs=%s", self.id, self.queues, sorted(self.registry)
        )

    def stop_claiming(self) -> None:
        self._stopping.set()
        if self._wake is not None:
            self._wake.wake()

    async def drain(self, grace: float | None = None) -> None:
        """Stop claiming; let running jobs finish within ``grace``; hand the rest back."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        self.stop_claiming()
        if self._main is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            log.info("worker %s: waiting up to %.1f s for %d jobs", self.id, grace, len(pending))
            _, still = await asyncio.wait(pending, timeout=grace)
            if still:
                log.warning("worker %s: releasing %d unfinished jobs", self.id, len(still))
                for attempt in list(self.attempts.values()):
                    attempt.stop(StopReason.SHUTDOWN)
                await asyncio.wait(still, timeout=max(5.0, self.settings.cancel_grace_seconds))
        for task in (self._heartbeat, self._beat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watchdog.stop()
        for executor in self._executors.values():
            await executor.close()
        try:
            await self.store.deregister_worker(self.id)
        except JobwireError as exc:
            log.warning("worker %s: not deregistered (it will show as lost): %s", self.id, exc)
        log.info("worker %s stopped", self.id)

    # -- the registry --------------------------------------------------------------------

    def info(self, now: float) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=tuple(self.queues),
            concurrency=sum(e.size for e in self._executors.values()),
            version=_version(),
            started_at=self._started_at or now,
            last_heartbeat=now,
            running=tuple(self.attempts),
            names=tuple(sorted(self.registry)),
        )

    async def _register(self) -> None:
        """Put this worker in the store's registry (and forget long-lost ones); a store
        that is down now only delays it to the next heartbeat."""
        now = time.time()
        self._started_at = self._started_at or now
        try:
            await self.store.prune_workers(now - FORGET_LOST_WORKERS_AFTER)
            await self.store.register_worker(self.info(now))
            await self.store.record_job_names(sorted(self.registry), now)
        except JobwireError as exc:
            log.warning("worker %s: not registered yet: %s", self.id, exc)

    # -- claiming ------------------------------------------------------------------------

    def _free(self, kind: Executor) -> int:
        executor = self._executors.get(kind)
        if executor is None:
            return 0
        return min(executor.size - self._running_by_kind[kind], executor.available())

    def _names(self, kind: Executor) -> list[str]:
        """The job names of ``kind`` this worker may claim now (not held back by a
        rate limit that refused one of them)."""
        now = time.time()
        return [
            n
            for n, s in self.registry.items()
            if s.options.executor == kind and self._blocked.get(job_key(n), 0.0) <= now
        ]

    def _queues(self) -> list[str]:
        now = time.time()
        return [q for q in self.queues if self._blocked.get(queue_key(q), 0.0) <= now]

    def _next_unblock(self) -> float | None:
        now = time.time()
        for key in [k for k, until in self._blocked.items() if until <= now]:
            del self._blocked[key]
        return min(self._blocked.values(), default=None)

    async def _claim_loop(self) -> None:
        doorbell = self._doorbell = self.store.doorbell(self.id)
        # With a doorbell, new work comes through it; the hub says only when wake-ups
        # may have been missed (its listener is back), which ends a backoff early.
        watch = self.hub.watch_queues(self.queues) if doorbell is None else self.hub.watch_resync()
        try:
            with watch as wake, self.hub.on_cancel(self._on_cancel):
                self._wake = wake
                await self._claim_until_stopped(wake)
        finally:
            self._doorbell = None
            if doorbell is not None:
                await doorbell.close()

    async def _claim_until_stopped(self, wake: Watch) -> None:
        outage = Outage(log, f"worker {self.id}")
        while not self._stopping.is_set():
            try:
                filled, more = await self._claim_round()
                idle = None if filled or more else await self._idle_wait()
                outage.succeeded()
            except StoreUnavailable as exc:
                # Back off, but a wake-up (the store's listener is back, new work)
                # ends the wait early: work resumes as soon as the store does.
                await wake.wait(outage.failed(exc))
                continue
            except Exception:
                # A bug must not leave a worker that looks alive but claims nothing.
                log.exception("worker %s: claiming failed", self.id)
                await wake.wait(min(self.settings.poll_seconds, STORE_BACKOFF.cap))
                continue
            if self._stopping.is_set():
                break
            if filled:
                # Every slot is busy: a finishing job wakes us.
                await wake.wait(self.settings.poll_seconds)
                continue
            if more:
                # The queue filled every slot we asked for: there may be more due
                # already; yield once to let finished jobs free their slots.
                await asyncio.sleep(0)
                continue
            try:
                await self._wait_for_work(wake, idle)
            except Exception:
                log.exception("worker %s: waiting for work failed", self.id)
                await wake.wait(min(self.settings.poll_seconds, STORE_BACKOFF.cap))

    async def _wait_for_work(self, wake: Watch, timeout: float | None) -> None:
        """Sleep until new work, a freed slot, stop, or ``timeout``."""
        doorbell = self._doorbell
        kinds = frozenset(k for k in self._executors if self._free(k) > 0)
        if doorbell is None or not kinds or timeout is None or timeout <= 0 or wake.woken:
            await wake.wait(timeout)
            return
        names = [n for k in sorted(kinds) for n in self._names(k)]
        loop = asyncio.get_running_loop()
        rang = loop.create_task(doorbell.wait(self.queues, names, timeout))
        woken = loop.create_task(wake.wait(timeout))
        try:
            await asyncio.wait((rang, woken), return_when=asyncio.FIRST_COMPLETED)
            if not rang.done():
                await doorbell.interrupt()
            ring = await rang
        finally:
            rang.cancel()
            woken.cancel()
        if ring is not None and self._stopping.is_set():
            await doorbell.pass_on(ring)  # it was meant for a worker that will claim

    async def _claim_round(self) -> tuple[bool, bool]:
        """Claim for every executor with free slots.

        Returns (all slots busy now, some claim got every job it asked for). When a
        claim fails, the jobs the others got are still run, then its error is raised.
        """
        if self._alone:
            if self.attempts:
                return True, False  # a finishing job wakes the loop
            self._alone = False
        wanted = {k: self._free(k) for k in self._executors}
        kinds = [k for k, free in wanted.items() if free > 0]
        if not kinds:
            return True, False
        queues = self._queues()
        names = {k: self._names(k) for k in kinds}
        kinds = [k for k in kinds if names[k] and queues]  # the rest held back by limits
        asked = time.monotonic()  # a lease granted by this claim runs from no earlier
        answers = await asyncio.gather(
            *(
                self.store.claim(self.id, queues, names[k], wanted[k], self.settings.lease_seconds)
                for k in kinds
            ),
            return_exceptions=True,
        )
        got = {
            k: a for k, a in zip(kinds, answers, strict=True) if not isinstance(a, BaseException)
        }
        failure = next((a for a in answers if isinstance(a, BaseException)), None)
        claimed = [claim for claims in got.values() for claim in claims]
        refused: list[tuple[Claim, float | None]] = []
        # A cancel heard between the claim and the launch (the gate awaits the store) is
        # kept for the launch: its notice comes once, and the claim was read before it.
        self._launching.update(claim.job.id for claim in claimed)
        try:
            if not self._stopping.is_set():
                claimed, refused, refusal = await self._gate(claimed)
                failure = failure or refusal
            return await self._start_claimed(claimed, asked, got, wanted, failure)
        finally:
            self._launching.clear()
            self._cancel_heard.clear()
            # After the granted jobs started, so a permit's time is close to its start.
            await asyncio.gather(*(self._hand_back(claim, due) for claim, due in refused))

    async def _start_claimed(
        self,
        claimed: Sequence[Claim],
        asked: float,
        got: Mapping[Executor, Sequence[Claim]],
        wanted: Mapping[Executor, int],
        failure: BaseException | None,
    ) -> tuple[bool, bool]:
        """Run what the claim round got and may run; answers as ``_claim_round``."""
        if self._stopping.is_set():
            # A stop came while the claim was in flight: what it took goes straight back,
            # so nothing is claimed by this worker after it was told to stop.
            await asyncio.gather(*(self._hand_back(claim) for claim in claimed))
            return False, False
        alone = next((claim for claim in claimed if runs_alone(claim.job)), None)
        if alone is not None:
            await self._run_alone(alone, claimed, asked)
            if failure is not None:
                raise failure
            return True, False
        for claim in claimed:
            self._launch(claim, asked)
        if failure is not None:
            raise failure
        more = any(len(claims) == wanted[k] for k, claims in got.items())
        return all(self._free(k) <= 0 for k in self._executors), more

    async def _run_alone(self, alone: Claim, claimed: Sequence[Claim], asked: float) -> None:
        """Run ``alone`` with nothing beside it when nothing runs here now; hand back the
        rest of the claim (and ``alone`` too, while other jobs still run)."""
        keep = alone if not self.attempts else None
        self._alone = True
        await asyncio.gather(*(self._hand_back(c) for c in claimed if c is not keep))
        if keep is None:
            log.info(
                "job %s (%s) has lost its worker %d times: handed back until this worker "
                "runs nothing else",
                alone.job.id,
                alone.job.job,
                alone.job.crashes,
            )
            return
        log.warning(
            "job %s (%s) has lost its worker %d times (crash budget %d): running it alone",
            alone.job.id,
            alone.job.job,
            alone.job.crashes,
            alone.job.max_crashes,
        )
        self._launch(keep, asked)

    async def _hand_back(self, claim: Claim, due_at: float | None = None) -> None:
        await self._release_permits(claim)
        try:
            await self.store.release(claim.job.id, claim.token, due_at)
        except JobwireError as exc:
            log.warning("job %s: not handed back (its lease will expire): %s", claim.job.id, exc)

    # -- rate limits -----------------------------------------------------------------------

    def _limits_of(self, claim: Claim) -> list[Limit]:
        spec = self.registry[claim.job.job]
        found = [spec.options.limit(claim.job.job), self.queue_limits.get(claim.job.queue)]
        return [limit for limit in found if limit is not None]

    async def _gate(
        self, claimed: Sequence[Claim]
    ) -> tuple[list[Claim], list[tuple[Claim, float | None]], BaseException | None]:
        """Take a permit for each claimed job under its limits, and hold back the name
        or queue of a refused one until the store says a permit may be free. Answers
        the jobs that may run, those to hand back (uncharged) with when they are due,
        and an error from the store."""
        outcomes = await asyncio.gather(
            *(self._acquire(claim) for claim in claimed), return_exceptions=True
        )
        runnable: list[Claim] = []
        failure: BaseException | None = None
        backs: list[tuple[Claim, float | None]] = []
        for claim, outcome in zip(claimed, outcomes, strict=True):
            if outcome is None:
                runnable.append(claim)
                continue
            if isinstance(outcome, BaseException):
                failure = failure or outcome
                backs.append((claim, None))
                continue
            limits = self._limits_of(claim)
            # The job's own limit is the one to wait out when it has one; else its queue's.
            key = job_key(claim.job.job)
            if not any(limit.key == key for limit in limits):
                key = queue_key(claim.job.queue)
            self._blocked[key] = max(self._blocked.get(key, 0.0), outcome)
            backs.append((claim, outcome))
        return runnable, backs, failure

    async def _acquire(self, claim: Claim) -> float | None:
        limits = self._limits_of(claim)
        if not limits:
            return None
        now = time.time()
        retry_at = await self.store.acquire_permit(
            limits, claim.token, now + self.settings.lease_seconds, now
        )
        if retry_at is None:
            held = [limit.key for limit in limits if limit.concurrency is not None]
            if held:
                self._permits[claim.job.id] = held
        return retry_at

    async def _release_permits(self, claim: Claim) -> None:
        keys = self._permits.pop(claim.job.id, None)
        if not keys:
            return
        try:
            await self.store.release_permit(keys, claim.token)
        except JobwireError as exc:
            log.warning(
                "job %s: permit not given back (it expires with the lease): %s", claim.job.id, exc
            )

    async def _renew_permits(self, job_ids: Sequence[str]) -> None:
        held = [
            (key, self.attempts[job_id].token)
            for job_id in job_ids
            if job_id in self.attempts
            for key in self._permits.get(job_id, ())
        ]
        if not held:
            return
        try:
            await self.store.renew_permits(held, time.time() + self.settings.lease_seconds)
        except JobwireError as exc:
            log.warning("worker %s: permits not renewed: %s", self.id, exc)

    async def _idle_wait(self) -> float:
        # Only what this worker has room for: a job due now that only a full executor
        # runs is claimed when a slot frees (which wakes the loop), not by polling.
        names = [n for k in self._executors if self._free(k) > 0 for n in self._names(k)]
        queues = self._queues()
        due = await self.store.next_due(queues, names) if names and queues else None
        wait = self.settings.poll_seconds
        unblock = self._next_unblock()  # a name or queue a rate limit held back is free
        for at in (due, unblock):
            if at is not None:
                wait = min(wait, max(0.0, at - time.time()))
        return wait

    def _launch(self, claim: Claim, asked: float) -> None:
        spec = self.registry[claim.job.job]
        kind = spec.options.executor
        attempt = Attempt(
            claim,
            spec,
            self._executors[kind],
            self.store,
            self.settings.cancel_grace_seconds,
            self._recording,
            self._limits,
        )
        self.attempts[claim.job.id] = attempt
        self._renewed[claim.job.id] = asked
        self._running_by_kind[kind] += 1
        self.claimed += 1

        async def run() -> None:
            try:
                await attempt.run()
            finally:
                await self._release_permits(claim)

        task = asyncio.get_running_loop().create_task(run(), name=f"jobwire-job-{claim.job.id}")
        self._tasks.add(task)
        if claim.job.cancel_requested or claim.job.id in self._cancel_heard:
            attempt.request_cancel()
        holds_slot = True

        def free_slot() -> None:
            nonlocal holds_slot
            if holds_slot:
                holds_slot = False
                # With a doorbell, only a slot of a full executor calls for a claim: the
                # claims since it had room asked for its jobs, and its new ones ring.
                was_full = self._free(kind) <= 0
                self._running_by_kind[kind] -= 1
                if self._wake is not None and (self._doorbell is None or was_full):
                    self._wake.wake()

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            self.attempts.pop(claim.job.id, None)
            self._renewed.pop(claim.job.id, None)
            if not t.cancelled() and t.exception() is not None:
                log.error("job %s: attempt crashed", claim.job.id, exc_info=t.exception())
            free_slot()
            if self._alone and not self.attempts and self._wake is not None:
                self._wake.wake()  # the worker may claim again: nothing runs here now

        attempt.code_ended = free_slot
        task.add_done_callback(done)

    # -- leases and cancellation ---------------------------------------------------------

    def _on_cancel(self, job_id: str) -> None:
        attempt = self.attempts.get(job_id)
        if attempt is not None:
            attempt.request_cancel()
        elif job_id in self._launching:
            self._cancel_heard.add(job_id)

    async def _heartbeat_loop(self) -> None:
        """Send a heartbeat every ``heartbeat_seconds``, one at a time, and stop any
        attempt whose lease has run out meanwhile. A heartbeat in flight never holds
        this loop up: the lease clock keeps running while the store does not answer."""
        every = self.settings.heartbeat_seconds
        next_beat = time.monotonic() + every
        while True:
            now = time.monotonic()
            self._stop_expired(now)
            if now >= next_beat:
                outage = self._beat_outage
                # Sooner while the store is away, so leases are renewed once it is back.
                wait = (
                    min(every, outage.backoff.delay(outage.failures)) if outage.ongoing else every
                )
                next_beat = now + wait
                if self._beat is None or self._beat.done():
                    self._beat = asyncio.get_running_loop().create_task(
                        self._heartbeat_once(), name="jobwire-heartbeat-call"
                    )
            deadlines = [t + self.settings.lease_seconds for t in self._renewed.values()]
            await asyncio.sleep(max(0.0, min([next_beat, *deadlines]) - time.monotonic()))

    async def _heartbeat_once(self) -> None:
        try:
            await self._worker_heartbeat()
        except StoreUnavailable as exc:
            self._beat_outage.failed(exc)
            return
        tokens = {a.job_id: a.token for a in self.attempts.values()}
        if not tokens:
            self._beat_outage.succeeded()
            return
        sent = time.monotonic()
        try:
            reply = await self.store.heartbeat(self.id, tokens, self.settings.lease_seconds)
            self._beat_outage.succeeded()
        except StoreUnavailable as exc:
            self._beat_outage.failed(exc)
            return
        except JobwireError as exc:
            log.warning("worker %s: heartbeat failed: %s", self.id, exc)
            return
        for job_id in tokens.keys() - reply.lost:
            if job_id in self._renewed:
                self._renewed[job_id] = max(self._renewed[job_id], sent)
        for job_id in reply.lost:
            self._renewed.pop(job_id, None)
            attempt = self.attempts.get(job_id)
            if attempt is not None:
                attempt.stop(StopReason.LOST)
        for job_id in reply.cancel_requested:
            attempt = self.attempts.get(job_id)
            if attempt is not None:
                attempt.request_cancel()
        # A permit lives as long as its job's lease: renewed with it, after what stops.
        await self._renew_permits(sorted(tokens.keys() - reply.lost))

    def _stop_expired(self, now: float) -> None:
        """Stop the attempts whose lease no answered heartbeat has renewed in time."""
        lease = self.settings.lease_seconds
        for job_id, renewed in list(self._renewed.items()):
            if now - renewed < lease:
                continue
            del self._renewed[job_id]
            attempt = self.attempts.get(job_id)
            if attempt is not None:
                log.warning(
                    "job %s: lease lost: no heartbeat answered for %.1f s (lease %g s); "
                    "another worker may run it now, so this attempt stops",
                    job_id,
                    now - renewed,
                    lease,
                )
                attempt.stop(StopReason.LOST)

    async def _worker_heartbeat(self) -> None:
        """One write per heartbeat interval says this worker is alive (jobs or none)."""
        try:
            known = await self.store.worker_heartbeat(self.id, list(self.attempts), time.time())
        except StoreUnavailable:
            raise  # the caller backs off and logs the outage once
        except JobwireError as exc:
            log.warning("worker %s: registry heartbeat failed: %s", self.id, exc)
            return
        if not known:  # pruned while cut off, or the store lost it: register again
            await self._register()

    def _async_jobs(self) -> list[str]:
        return [
            f"{a.spec.name}({a.job_id})"
            for a in self.attempts.values()
            if a.spec.options.executor == "async"
        ]
