"""``Jobwire``: the registry of jobs, the settings, the store, the lifespan, and the
Python API to enqueue, get, cancel and follow jobs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from jobwire import tracing
from jobwire.errors import (
    ConfigError,
    JobCancelled,
    JobDefinitionError,
    JobFailed,
    JobNotFound,
    JobwireError,
    ScheduleNotFound,
    StoreUnavailable,
    UnknownJobError,
    WorkflowEnded,
    WorkflowNotFound,
)
from jobwire.feed.follow import RECHECK_SECONDS, follow
from jobwire.feed.hub import Hub
from jobwire.gcpolicy import tune_collector
from jobwire.ids import new_job_id
from jobwire.jobs import Executor, JobSpec, P, R, build_options
from jobwire.model import (
    DEFAULT_MAX_CRASHES,
    EXPIRES_AT_OPTION,
    MAX_CRASHES_OPTION,
    Event,
    Job,
    State,
)
from jobwire.outage import Outage
from jobwire.retry import Backoff
from jobwire.schedules import DEFAULT_GRACE, Misfire, Schedule, ScheduleInfo
from jobwire.services.base import Service
from jobwire.services.expirer import Expirer
from jobwire.services.pruner import Pruner
from jobwire.services.reaper import Reaper
from jobwire.services.scheduler import Scheduler
from jobwire.services.workflows import WorkflowService, cancel_steps, read_statuses
from jobwire.settings import Settings
from jobwire.store import store_from_url
from jobwire.store.base import NewJob, Store, WorkflowRecord, WorkflowState, no_live_worker
from jobwire.throttle import Limit, check_concurrency, make_limit, parse_rate, queue_key
from jobwire.webhooks.options import check_webhook
from jobwire.worker.loop import Worker
from jobwire.workflows import (
    Chain,
    Group,
    Node,
    Signature,
    Step,
    WorkflowInfo,
    check_steps,
    step_key,
    steps_of,
)

if TYPE_CHECKING:
    from fastapi import APIRouter

    from jobwire.webhooks.outbox import Outbox

log = logging.getLogger("jobwire")

T = TypeVar("T")

MAX_PRIORITY = 1000


class JobHandle(Generic[T]):
    """A submitted job, followed from Python."""

    def __init__(self, app: Jobwire, job: Job, *, created: bool = True) -> None:
        self._app = app
        self.job = job
        self.id = job.id
        self.created = created

    def __repr__(self) -> str:
        return f"<JobHandle {self.job.job} {self.id}>"

    async def get(self) -> Job:
        job = await self._app.get(self.id)
        if job is None:
            raise JobNotFound(self.id)
        self.job = job
        return job

    async def wait(self, timeout: float | None = None) -> Job:
        """Wait until the job is terminal; raises TimeoutError after ``timeout`` seconds."""
        self.job = await self._app.wait(self.id, timeout)
        return self.job

    async def result(self, timeout: float | None = None) -> T:
        """The job's result once it succeeds; raises JobFailed, JobCancelled or TimeoutError."""
        job = await self.wait(timeout)
        if job.state is State.SUCCEEDED:
            spec = self._app.registry.get(job.job)
            if spec is not None and job.result is not None:
                value: T = spec.result_adapter.validate_python(job.result)
                return value
            return job.result  # type: ignore[no-any-return]
        if job.state is State.CANCELLED:
            raise JobCancelled(job.id)
        raise JobFailed(job.id, job.error)

    def events(self, after: int = 0) -> AsyncIterator[Event]:
        """Replay the job's events after ``after`` and follow it to its end."""
        return self._app.events(self.id, after)

    async def cancel(self) -> Job:
        self.job = await self._app.cancel(self.id)
        return self.job


class Jobwire:
    """Durable jobs for FastAPI. ``jobs = Jobwire()`` reads ``JOBWIRE_URL`` and friends."""

    def __init__(
        self,
        url: str | None = None,
        *,
        store: Store | None = None,
        settings: Settings | None = None,
        auth: Callable[..., Any] | None = None,
        **overrides: Any,
    ) -> None:
        """``auth``: a FastAPI dependency returning the caller's owner (a string)."""
        if settings is None:
            settings = Settings.from_env(url=url, **overrides)
        elif url is not None or overrides:
            settings = settings.with_(**({"url": url} if url else {}), **overrides)
        self.settings = settings
        self.auth = auth
        self.registry: dict[str, JobSpec[Any, Any]] = {}
        self.schedules: dict[str, Schedule] = {}
        self.queue_limits: dict[str, Limit] = {}
        self._store = store
        self._hub: Hub | None = None
        self._opened = 0
        self._open_lock: asyncio.Lock | None = None
        # While a start-up waits for a store that is away (see lifespan): that task, the
        # last reason the store could not be opened, and why the start-up gave up.
        self._opening: asyncio.Task[None] | None = None
        self._waiting_for: str = ""
        self.startup_failed: str | None = None
        self.worker: Worker | None = None
        self._services: list[Service] = []
        self.outbox: Outbox | None = None  # sends webhooks while services run
        self._router: APIRouter | None = None

    def __repr__(self) -> str:
        return f"Jobwire({self.settings.url!r}, jobs={sorted(self.registry)})"

    def using(self, url: str | None = None, **overrides: Any) -> Jobwire:
        """A new, unopened ``Jobwire`` running the same jobs over another store or settings.

        For tests and tools: point a module-level ``jobs`` at a temporary database
        without touching it. The new instance starts with the jobs registered so far;
        process jobs still resolve by module and name in their job processes. Enqueue
        through the returned instance (``other.enqueue(crunch, {"n": 1})``):
        ``crunch.enqueue(...)`` goes to the instance that registered ``crunch``.
        """
        settings = self.settings.with_(**({"url": url} if url else {}), **overrides)
        other = Jobwire(settings=settings, auth=self.auth)
        other.registry = dict(self.registry)
        other.schedules = dict(self.schedules)
        other.queue_limits = dict(self.queue_limits)
        return other

    def limit_queue(
        self,
        queue: str,
        *,
        rate: str | tuple[int, float] | None = None,
        concurrency: int | None = None,
    ) -> None:
        """Limit every job run from ``queue``, across every worker on every host: at
        most ``rate`` starts (``"100/m"``, ``"10/s"``, ``(10, 1.0)``) in any such period,
        and at most ``concurrency`` running at once. Adds to each job's own limits.
        Raises JobDefinitionError for a bad rate or concurrency, or neither given."""
        where = f"queue {queue!r}"
        if not queue or not isinstance(queue, str):
            raise JobDefinitionError(f"queue must be a non-empty string, got {queue!r}")
        limit = make_limit(
            queue_key(queue), parse_rate(where, rate), check_concurrency(where, concurrency)
        )
        if limit is None:
            raise JobDefinitionError(f"{where}: limit_queue needs rate= or concurrency=")
        self.queue_limits[queue] = limit

    # -- registering jobs ----------------------------------------------------------------

    @overload
    def job(self, fn: Callable[..., Any], /) -> JobSpec[Any, Any]: ...

    @overload
    def job(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        executor: Executor | None = None,
        retries: int = 0,
        backoff: Backoff | float | None = None,
        timeout: float | None = None,
        queue: str = "default",
        priority: int = 0,
        log_events: bool = False,
        max_crashes: int | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
        fail_on: type[BaseException] | tuple[type[BaseException], ...] = (),
        soft_timeout: float | None = None,
        expires: float | None = None,
        rate_limit: str | tuple[int, float] | None = None,
        concurrency: int | None = None,
    ) -> Callable[[Callable[..., Any]], JobSpec[Any, Any]]: ...

    def job(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        executor: Executor | None = None,
        retries: int = 0,
        backoff: Backoff | float | None = None,
        timeout: float | None = None,
        queue: str = "default",
        priority: int = 0,
        log_events: bool = False,
        max_crashes: int | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
        fail_on: type[BaseException] | tuple[type[BaseException], ...] = (),
        soft_timeout: float | None = None,
        expires: float | None = None,
        rate_limit: str | tuple[int, float] | None = None,
        concurrency: int | None = None,
    ) -> JobSpec[Any, Any] | Callable[[Callable[..., Any]], JobSpec[Any, Any]]:
        """Register a function as a job, bare (``@jobs.job``) or with options.

        ``retries`` are for the job's own errors; ``max_crashes`` (default
        ``JOBWIRE_MAX_CRASHES``, 3) is how many times it may lose its worker (killed, or
        cut off from the store) before it fails as a job that kills its worker.

        ``retry_on`` (exception classes; default: every error) limits which errors are
        retried; ``fail_on`` fails the job at once and wins over ``retry_on``; a job may
        also ``raise Retry(delay=...)``. ``soft_timeout`` (seconds, shorter than
        ``timeout``) raises SoftTimeLimit inside an async job and sets ``ctx.cancelled``
        for a thread or process job. ``expires`` (seconds after submit): a job not
        started by then ends cancelled with reason ``expired`` and never runs.
        ``rate_limit`` (``"10/s"``, ``"100/m"`` or ``(10, 1.0)``) and ``concurrency``
        (running at once) hold across every worker on every host, through the store.
        """

        def register(function: Callable[..., Any]) -> JobSpec[Any, Any]:
            if isinstance(function, JobSpec):
                raise JobDefinitionError(f"{function.name} is already a registered job")
            options = build_options(
                function,
                executor=executor,
                retries=retries,
                backoff=backoff,
                timeout=timeout,
                queue=queue,
                priority=priority,
                log_events=log_events,
                max_crashes=max_crashes,
                retry_on=retry_on,
                fail_on=fail_on,
                soft_timeout=soft_timeout,
                expires=expires,
                rate_limit=rate_limit,
                concurrency=concurrency,
            )
            job_name = name or function.__name__
            if job_name in self.registry:
                raise JobDefinitionError(f"a job named {job_name!r} is already registered")
            spec: JobSpec[Any, Any] = JobSpec(self, function, job_name, options)
            self.registry[job_name] = spec
            return spec

        if fn is not None:
            return register(fn)
        return register

    def schedule(
        self,
        cron: str,
        job: str | JobSpec[Any, Any],
        args: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        timezone: str = "UTC",
        misfire: Misfire = "latest",
        grace: float = DEFAULT_GRACE,
        queue: str | None = None,
        priority: int | None = None,
        owner: str = "anonymous",
    ) -> Schedule:
        """Enqueue ``job`` with ``args`` on every tick of ``cron`` in ``timezone``.

        ``cron``: five fields (minute hour day month weekday), or six with seconds
        last. Every server and worker of this code fires it; each tick gives exactly one
        job, owned by ``owner`` (what ``GET P/schedules`` and the job routes scope by).
        ``misfire`` says what a tick nobody fired within ``grace`` seconds of its time
        becomes (everything was down, or the schedule paused): ``"latest"`` (the newest
        such tick fires once), ``"skip"`` or ``"all"`` (the newest 100 at most). The name
        (default: the job's) identifies its stored state: pause, last fire, last job.
        Raises JobDefinitionError for a bad cron, time zone, name, or one already used,
        and InvalidArguments for arguments the job does not accept.
        """
        spec = self.spec(job) if isinstance(job, str) else job
        declared = Schedule(
            name=name or spec.name,
            job=spec.name,
            cron=cron,
            args=spec.check_arguments(args or {}),
            timezone=timezone,
            misfire=misfire,
            grace=grace,
            queue=queue,
            priority=priority,
            owner=owner,
        )
        if declared.name in self.schedules:
            raise JobDefinitionError(f"a schedule named {declared.name!r} is already declared")
        self.schedules[declared.name] = declared
        return declared

    async def schedule_infos(self, owner: str | None = None) -> list[ScheduleInfo]:
        """The declared schedules (of ``owner``, when given), by name, with their state."""
        await self._ensure_open()
        chosen = [s for _, s in sorted(self.schedules.items()) if owner in (None, s.owner)]
        now = time.time()
        states = await self.store.track_schedules([s.name for s in chosen], now)
        infos = []
        for schedule in chosen:
            state = states[schedule.name]
            last = None
            if state.last_job_id is not None:
                job = await self.store.get(state.last_job_id)
                last = "pruned" if job is None else job.state.value
            infos.append(
                ScheduleInfo(
                    schedule=schedule,
                    paused=state.paused,
                    next_fire_at=None
                    if state.paused
                    else schedule.next_after(max(now, state.since)),
                    last_fire_at=state.last_fire_at,
                    last_job_id=state.last_job_id,
                    last_outcome=last,
                )
            )
        return infos

    async def pause_schedule(
        self, name: str, paused: bool = True, owner: str | None = None
    ) -> ScheduleInfo:
        """Pause (or resume, ``paused=False``) a declared schedule in the store, for every
        process; raises ScheduleNotFound when this code declares none of that name (or
        not for ``owner``). Ticks that pass while it is paused never fire."""
        schedule = self.schedules.get(name)
        if schedule is None or owner not in (None, schedule.owner):
            raise ScheduleNotFound(name)
        await self._ensure_open()
        await self.store.set_schedule_paused(name, paused, time.time())
        [info] = [i for i in await self.schedule_infos() if i.schedule.name == name]
        return info

    async def _fire(self, schedule: Schedule, tick: float) -> str:
        """The schedule's job for this tick: enqueued, or found by its key when another
        scheduler got there first."""
        handle: JobHandle[Any] = await self.enqueue(
            schedule.job,
            schedule.args,
            run_at=tick,
            queue=schedule.queue,
            priority=schedule.priority,
            idempotency_key=schedule.key(tick),
            owner=schedule.owner,
            # The same for every scheduler of the tick, whatever each one's arguments,
            # so that a rolling deploy that changed them still yields one job.
            fingerprint=schedule.key(tick),
            options={"schedule": schedule.name, "tick": tick},
        )
        return handle.id

    # -- workflows -----------------------------------------------------------------------

    async def submit_workflow(
        self, flow: Node | Sequence[Step], *, owner: str = "anonymous"
    ) -> WorkflowInfo:
        """Check every step and store the workflow whole; its first steps are enqueued
        before this returns, the others as their predecessors succeed (by the workflow
        service that every server and worker runs). Raises InvalidWorkflow (a
        ValueError) naming the step and field of each problem.

        ``flow`` is a :func:`~jobwire.workflows.chain`, :func:`~jobwire.workflows.group`
        or signature (``crunch.s(n=1)``), or the steps themselves."""
        steps = steps_of(flow) if isinstance(flow, Signature | Chain | Group) else list(flow)
        checked = check_steps(steps, self.registry)
        await self._ensure_open()
        now = time.time()
        record = WorkflowRecord(
            id=new_job_id(),
            owner=owner,
            steps=[step.as_dict() for step in checked],
            created_at=now,
            updated_at=now,
        )
        await self.store.create_workflow(record)
        # The first steps now rather than on the next pass; a crash here loses nothing.
        service = WorkflowService(self.store, self._start_step, 1.0)
        with contextlib.suppress(JobwireError):
            await service.advance(record)
        info = await self.workflow(record.id)
        assert info is not None  # just stored
        return info

    async def workflow(self, workflow_id: str, owner: str | None = None) -> WorkflowInfo | None:
        """The workflow and where each step stands, or None (not found, or not ``owner``'s)."""
        await self._ensure_open()
        record = await self.store.get_workflow(workflow_id, owner)
        if record is None:
            return None
        found = await read_statuses(self.store, record)
        return WorkflowInfo(
            id=record.id,
            owner=record.owner,
            state=record.state.value,
            created_at=record.created_at,
            updated_at=record.updated_at,
            steps=found,
        )

    async def cancel_workflow(self, workflow_id: str, owner: str | None = None) -> WorkflowInfo:
        """End the workflow cancelled and cancel every step not yet finished (a queued
        one at once, a running one as ``cancel`` does); the steps not started never
        will be. Raises WorkflowNotFound, or WorkflowEnded when it has already ended."""
        await self._ensure_open()
        record = await self.store.get_workflow(workflow_id, owner)
        if record is None:
            raise WorkflowNotFound(workflow_id)
        ended = await self.store.end_workflow(workflow_id, WorkflowState.CANCELLED, time.time())
        if ended is None:
            now = await self.store.get_workflow(workflow_id)
            raise WorkflowEnded(workflow_id, now.state.value if now is not None else "gone")
        await cancel_steps(self.store, await read_statuses(self.store, ended))
        info = await self.workflow(workflow_id)
        assert info is not None
        return info

    async def wait_workflow(
        self, workflow_id: str, timeout: float | None = None, owner: str | None = None
    ) -> WorkflowInfo:
        """The workflow once it has ended (TimeoutError after ``timeout`` seconds)."""

        async def ended() -> WorkflowInfo:
            while True:
                info = await self.workflow(workflow_id, owner)
                if info is None:
                    raise WorkflowNotFound(workflow_id)
                if info.ended:
                    return info
                # Between looks the workflow service moves it on every interval.
                await asyncio.sleep(min(0.1, self.settings.workflow_interval_seconds))

        return await asyncio.wait_for(ended(), timeout)

    async def _start_step(self, workflow: WorkflowRecord, step: Step, args: dict[str, Any]) -> Job:
        """The step's job: enqueued, or found by its key when another process got there
        first."""
        key = step_key(workflow.id, step.name)
        handle: JobHandle[Any] = await self.enqueue(
            step.job,
            args,
            idempotency_key=key,
            owner=workflow.owner,
            # The same for every process that starts the step, whatever it read.
            fingerprint=key,
            options={"workflow": workflow.id, "step": step.name},
        )
        return handle.job

    def spec(self, name: str) -> JobSpec[Any, Any]:
        try:
            return self.registry[name]
        except KeyError:
            raise UnknownJobError(name, list(self.registry)) from None

    # -- store and lifecycle -------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = store_from_url(self.settings.url, self.settings)
        return self._store

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            self._check_not_waiting()
            raise ConfigError("the store is not open: use 'async with jobs:' or jobs.lifespan")
        return self._hub

    @property
    def waiting_for_store(self) -> bool:
        """A start-up is still waiting for the store (or gave up waiting)."""
        return self._opening is not None and (
            not self._opening.done() or self.startup_failed is not None
        )

    def _check_not_waiting(self) -> None:
        if self.startup_failed is not None:
            raise StoreUnavailable(self.startup_failed)
        if self.waiting_for_store:
            raise StoreUnavailable(
                f"not open yet; start-up keeps trying to open it: {self._waiting_for}"
            )

    async def ping(self) -> None:
        """Readiness: raises StoreUnavailable unless the store is open, answers, and its
        schema is at this jobwire's version."""
        self._check_not_waiting()
        await self.store.ping()

    async def open(self) -> None:
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._opened == 0:
                await self.store.open()
                self._hub = Hub(self.store)
            self._opened += 1

    async def close(self) -> None:
        if self._opened == 0:
            return
        self._opened -= 1
        if self._opened == 0:
            if self._hub is not None:
                self._hub.close()
                self._hub = None
            await self.store.close()

    async def _ensure_open(self) -> None:
        if self._opened == 0:
            # The start-up that is waiting for the store opens it, not a request.
            self._check_not_waiting()
            await self.open()

    async def open_when_reachable(self, timeout: float | None = None) -> None:
        """Open the store, riding out its absence at start-up as run time rides out an
        outage: the same capped, jittered backoff, the outage logged when it begins,
        reminded, and when it ends. Gives up with StoreUnavailable after ``timeout``
        seconds (``JOBWIRE_STARTUP_TIMEOUT_SECONDS`` by default; 0 tries once)."""
        await self._open_patiently(
            self.settings.startup_timeout_seconds if timeout is None else timeout
        )

    async def _open_patiently(self, timeout: float, outage: Outage | None = None) -> None:
        outage = outage or Outage(log, "start-up")
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.open()
            except StoreUnavailable as exc:
                self._waiting_for = str(exc)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailable(
                        f"still unavailable after waiting {timeout:g} s at start-up "
                        f"(JOBWIRE_STARTUP_TIMEOUT_SECONDS): {exc}"
                    ) from exc
                await asyncio.sleep(min(outage.failed(exc), left))
                continue
            outage.succeeded()
            return

    async def __aenter__(self) -> Jobwire:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start_services(self) -> None:
        self._services = [
            Reaper(self.store, self.settings.reap_every, self.settings.lease_seconds),
            Pruner(self.store, self.settings.retention_seconds),
            Expirer(self.store),
            Scheduler(
                self.store, self.schedules, self._fire, self.settings.schedule_interval_seconds
            ),
            WorkflowService(self.store, self._start_step, self.settings.workflow_interval_seconds),
        ]
        if self.settings.webhook_secret:
            # Every process that runs services sends webhooks; claims keep them apart.
            # Imported here: the sender pulls in httpx, which job processes never need.
            from jobwire.webhooks.outbox import Outbox

            self.outbox = Outbox(self.store, self.settings)
            self._services.append(self.outbox)
        else:
            with contextlib.suppress(JobwireError):
                if await self.store.next_delivery_at() is not None:
                    log.warning(
                        "webhook deliveries are pending but JOBWIRE_WEBHOOK_SECRET is not set "
                        "here: this process will not send them"
                    )
        for service in self._services:
            service.start()

    async def stop_services(self) -> None:
        for service in self._services:
            await service.stop()
        self._services = []
        self.outbox = None

    async def start_worker(self, queues: Sequence[str] | None = None) -> Worker:
        worker = Worker(
            self.registry,
            self.store,
            self.hub,
            self.settings,
            queues=queues,
            queue_limits=self.queue_limits,
        )
        await worker.start()
        self.worker = worker
        return worker

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """FastAPI lifespan: the store opens, embedded workers run, all stop with the app.

        When the store is away at start-up (PostgreSQL or Redis not up yet), the app
        serves at once and opens the store in the background, with the backoff of run
        time: ``P/health/live`` answers 200, ``P/health/ready`` and every route that
        needs the store 503 with the reason, until the store opens; then the services
        and embedded workers start. Past ``JOBWIRE_STARTUP_TIMEOUT_SECONDS`` it gives
        up: liveness answers 503 too, so that a supervisor restarts the process.
        ``JOBWIRE_STARTUP_TIMEOUT_SECONDS=0`` fails the start-up at once instead.
        """
        try:
            await self.open()
        except StoreUnavailable as exc:
            if self.settings.startup_timeout_seconds <= 0:
                raise
            async with self._serving_while_opening(exc):
                yield
            return
        try:
            await self._start_running()
            yield
        finally:
            await self._stop_running()

    @contextlib.asynccontextmanager
    async def _serving_while_opening(self, first: StoreUnavailable) -> AsyncIterator[None]:
        outage = Outage(log, "start-up")
        self._waiting_for = str(first)
        delay = outage.failed(first)
        started = asyncio.Event()

        async def open_then_start() -> None:
            await asyncio.sleep(delay)
            try:
                await self._open_patiently(self.settings.startup_timeout_seconds, outage)
            except StoreUnavailable as exc:
                self.startup_failed = str(exc)
                log.error("start-up: gave up opening the store: %s", exc)
                return
            try:
                await self._start_running()
            except Exception as exc:
                self.startup_failed = f"start-up failed once the store opened: {exc!r}"
                log.exception("start-up failed once the store opened")
                return
            started.set()

        self.startup_failed = None
        self._opening = asyncio.get_running_loop().create_task(
            open_then_start(), name="jobwire-startup"
        )
        try:
            yield
        finally:
            opening, self._opening = self._opening, None
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
            if started.is_set():
                await self._stop_running()
            elif self._opened:
                await self.close()

    async def _start_running(self) -> None:
        """With the store open: the services, then the embedded worker."""
        if self.settings.gc_tuning:
            tune_collector()
        try:
            await self.start_services()
            if self.settings.embedded_workers and self.registry:
                await self.start_worker()  # it records the names it runs
            else:
                await self._record_names()
        except BaseException:
            await self._stop_running()
            raise

    async def _stop_running(self) -> None:
        worker, self.worker = self.worker, None
        try:
            if worker is not None:
                await worker.drain()
        finally:
            await self.stop_services()
            await self.close()

    async def _record_names(self) -> None:
        """Make this instance's job names known to the store, so that ``jobwire submit``
        (without ``--app``) accepts them; a store that is down only delays that."""
        try:
            await self.store.record_job_names(sorted(self.registry), time.time())
        except JobwireError as exc:
            log.warning("job names not recorded in the store: %s", exc)

    async def no_worker(self, job: Job) -> bool:
        """True when the job is queued and no live worker (heard from within the lease)
        takes its name from its queue: it will wait until one starts."""
        if job.state is not State.QUEUED:
            return False
        workers = await self.store.list_workers()
        return no_live_worker(job, workers, self.settings.lease_seconds, time.time())

    async def run_worker(self, queues: Sequence[str] | None = None) -> None:
        """Run a standalone worker until SIGTERM or SIGINT, then drain gracefully.

        A store that is away at start-up is waited for (``open_when_reachable``); a stop
        signal meanwhile ends the wait and the worker."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            opening = loop.create_task(self.open_when_reachable())
            stopped = loop.create_task(stop.wait())
            await asyncio.wait((opening, stopped), return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not opening.done():
                opening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await opening
                log.info("start-up: stop requested while waiting for the store")
                await self.close()
                return
            opening.result()  # raises StoreUnavailable when the wait ran out
            if self.settings.gc_tuning:
                tune_collector()
            try:
                await self.start_services()
                worker = await self.start_worker(queues)
                await stop.wait()
                log.info("worker %s: stop requested; draining", worker.id)
                await worker.drain()
            finally:
                await self.stop_services()
                await self.close()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    # -- the HTTP router -----------------------------------------------------------------

    @property
    def router(self) -> APIRouter:
        if self._router is None:
            from jobwire.api.router import build_router

            self._router = build_router(self)
        return self._router

    @property
    def metrics_router(self) -> APIRouter:
        """``GET /metrics`` (Prometheus), for ``app.include_router(jobs.metrics_router)``:
        every process answers with the same numbers, read from the store."""
        from jobwire.api.metrics import build_metrics_router

        return build_metrics_router(self)

    @property
    def docs_router(self) -> APIRouter:
        """``GET /docs``: Swagger UI from files shipped inside jobwire, so the console works
        without a network. Create the app with ``docs_url=None, redoc_url=None`` (FastAPI's
        own pages load Swagger UI and ReDoc from a CDN), then
        ``app.include_router(jobs.docs_router)``."""
        from jobwire.api.docs import build_docs_router

        return build_docs_router()

    # -- the Python API ------------------------------------------------------------------

    async def enqueue(
        self,
        job: str | JobSpec[P, R],
        arguments: dict[str, Any] | None = None,
        *,
        delay: float | None = None,
        run_at: datetime | float | None = None,
        priority: int | None = None,
        queue: str | None = None,
        idempotency_key: str | None = None,
        owner: str = "anonymous",
        fingerprint: str | None = None,
        options: dict[str, Any] | None = None,
        expires_in: float | None = None,
        expires_at: datetime | float | None = None,
    ) -> JobHandle[R]:
        """Validate the arguments and store the job; returns once it is durable.

        Arguments that do not match the job's signature raise InvalidArguments (a
        ValueError) naming each field.

        ``options={"webhook": {"url": ..., "events": [...]}}`` asks for signed webhooks
        (terminal events when ``events`` is left out): raises ConfigError without
        ``JOBWIRE_WEBHOOK_SECRET``, and WebhookRefused for a bad URL or event name or a
        target the egress rules refuse.

        ``expires_in`` (seconds from now) or ``expires_at`` (an aware datetime or epoch
        seconds), else the job's ``expires`` option: a job not started by then ends
        cancelled with reason ``expired`` and never runs; a ValueError when it would
        expire before it is due.
        """
        spec = self.spec(job) if isinstance(job, str) else job
        args = spec.check_arguments(arguments or {})
        scheduled_at = schedule(delay, run_at)
        deadline = expiry(spec.options.expires, expires_in, expires_at, scheduled_at)
        if priority is not None and not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
            raise ValueError(f"priority must be within ±{MAX_PRIORITY}, got {priority}")
        if idempotency_key is not None and fingerprint is None:
            fingerprint = fingerprint_of(
                {
                    "job": spec.name,
                    "args": args,
                    "delay": delay,
                    "run_at": str(run_at),
                    "priority": priority,
                    "queue": queue,
                    **({"expires_in": expires_in} if expires_in is not None else {}),
                    **({"expires_at": str(expires_at)} if expires_at is not None else {}),
                }
            )
        new = NewJob(
            id=new_job_id(),
            job=spec.name,
            args=args,
            queue=queue or spec.options.queue,
            priority=spec.options.priority if priority is None else priority,
            max_attempts=spec.options.max_attempts,
            timeout=spec.options.timeout,
            scheduled_at=scheduled_at,
            owner=owner,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            options=with_crash_budget(
                _with_trace(options or {}), spec.options.max_crashes or self.settings.max_crashes
            ),
        )
        if deadline is not None:
            new = dataclasses.replace(new, options={**new.options, EXPIRES_AT_OPTION: deadline})
        if new.options.get("webhook") is not None:
            hook = await check_webhook(new.options["webhook"], self.settings)
            new = dataclasses.replace(new, options={**new.options, "webhook": hook})
        await self._ensure_open()
        [stored] = await self.store.enqueue([new])
        return JobHandle(self, stored.job, created=stored.created)

    async def get(self, job_id: str, owner: str | None = None) -> Job | None:
        await self._ensure_open()
        return await self.store.get(job_id, owner)

    async def cancel(self, job_id: str, owner: str | None = None) -> Job:
        await self._ensure_open()
        return await self.store.cancel(job_id, owner)

    @contextlib.asynccontextmanager
    async def transaction(self, connection: Any) -> AsyncIterator[None]:
        """Enqueue inside the application's own database transaction (PostgreSQL).

        Every enqueue in the block is written on ``connection``, so the jobs exist if
        and only if that transaction commits::

            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO orders …")
                async with jobs.transaction(conn):
                    await send_receipt.enqueue(order_id=7)
        """
        await self._ensure_open()
        join = getattr(self.store, "transaction", None)
        if join is None:
            raise ConfigError(
                f"{type(self.store).__name__} cannot join an application transaction; "
                "transactional enqueue needs the PostgreSQL store (JOBWIRE_URL=postgresql://…)"
            )
        async with join(connection):
            yield

    def handle(self, job_id: str) -> JobHandle[Any]:
        return JobHandle(self, Job(id=job_id, job="", args={}), created=False)

    async def wait(
        self, job_id: str, timeout: float | None = None, owner: str | None = None
    ) -> Job:
        """The job once terminal, or as it is when ``timeout`` runs out (raises TimeoutError)."""
        await self._ensure_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        await self.store.follow_news()
        with self.hub.watch_job(job_id) as watch:
            while True:
                job = await self.store.get(job_id, owner)
                if job is None:
                    raise JobNotFound(job_id)
                if job.terminal:
                    return job
                remaining = RECHECK_SECONDS
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"job {job_id} is still {job.state.value}")
                    remaining = min(remaining, left)
                await watch.wait(remaining)

    async def events(self, job_id: str, after: int = 0) -> AsyncIterator[Event]:
        await self._ensure_open()
        async for event in follow(self.store, self.hub, job_id, after):
            if event is not None:
                yield event


def schedule(delay: float | None, run_at: datetime | float | None) -> float | None:
    """When a job becomes due, as epoch seconds; None means now."""
    if delay is not None and run_at is not None:
        raise ValueError("give either delay or run_at, not both")
    if delay is not None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay}")
        return time.time() + delay
    if run_at is None:
        return None
    if isinstance(run_at, datetime):
        if run_at.tzinfo is None:
            raise ValueError("run_at must be timezone-aware (e.g. 2030-01-01T00:00:00Z)")
        return run_at.timestamp()
    return float(run_at)


def expiry(
    default: float | None,
    expires_in: float | None,
    expires_at: datetime | float | None,
    scheduled_at: float | None,
) -> float | None:
    """When a job must have started by, as epoch seconds; None: never expires.

    Raises ValueError when both are given, when ``expires_in`` is not > 0, or when the
    job would expire before it is due (it could never run)."""
    if expires_in is not None and expires_at is not None:
        raise ValueError("give either expires_in or expires_at, not both")
    now = time.time()
    if expires_in is not None:
        if expires_in <= 0:
            raise ValueError(f"expires_in must be > 0 seconds, got {expires_in}")
        deadline = now + expires_in
    elif isinstance(expires_at, datetime):
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware (e.g. 2030-01-01T00:00:00Z)")
        deadline = expires_at.timestamp()
    elif expires_at is not None:
        deadline = float(expires_at)
    elif default is not None:
        deadline = now + default
    else:
        return None
    due = now if scheduled_at is None else max(now, scheduled_at)
    if deadline <= due:
        raise ValueError(
            "the job would expire before it is due: expires at "
            f"{datetime.fromtimestamp(deadline, UTC).isoformat()}, due at "
            f"{datetime.fromtimestamp(due, UTC).isoformat()}"
        )
    return deadline


def fingerprint_of(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_crash_budget(options: dict[str, Any], max_crashes: int) -> dict[str, Any]:
    """The options with the job's crash budget, kept only when it is not the default."""
    if max_crashes == DEFAULT_MAX_CRASHES:
        return options
    return {**options, MAX_CRASHES_OPTION: max_crashes}


def _with_trace(options: dict[str, Any]) -> dict[str, Any]:
    """The options with the submitting trace context, when tracing is on and has one."""
    if tracing.OPTION in options:
        return options
    context = tracing.capture()
    return options if context is None else {**options, tracing.OPTION: context}
