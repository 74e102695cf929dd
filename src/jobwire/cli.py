"""The ``jobwire`` command: ``worker | submit [--follow] | status | ls | cancel | retry | demo``.

Each command only parses and checks its options, then awaits a plain coroutine
``run_<command>(opts, out, err)`` that returns the exit code; tests call those
in-process, and drive the installed ``jobwire`` binary by subprocess.

Exit codes: 0 done (for ``submit --follow``: the job succeeded); 1 the job failed or was
cancelled, was not found, or had already ended; 2 a usage error (an option, a job's
arguments, or an app that cannot be imported).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import difflib
import importlib
import json
import logging
import math
import os
import re
import shlex
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, ModuleType
from typing import Annotated, Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import typer
import uvicorn
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from jobwire.api.schemas import QUEUE_PATTERN, job_view
from jobwire.app import (
    MAX_PRIORITY,
    JobHandle,
    Jobwire,
    fingerprint_of,
    schedule,
    with_crash_budget,
)
from jobwire.errors import (
    AlreadyTerminal,
    ConfigError,
    IdempotencyConflict,
    InvalidArguments,
    InvalidTransition,
    JobNotFound,
    JobwireError,
    ScheduleNotFound,
    StoreUnavailable,
    UnknownJobError,
)
from jobwire.ids import new_job_id
from jobwire.jobs import JobSpec
from jobwire.loops import loop_factory
from jobwire.model import Event, EventType, Job, State
from jobwire.settings import Settings, env_name
from jobwire.store.base import BulkQuery, ListQuery, NewJob
from jobwire.store.sqlite import SQLiteStore

USAGE = 2
NOT_OK = 1

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STATE_STYLE = {
    State.QUEUED: "cyan",
    State.RUNNING: "yellow",
    State.SUCCEEDED: "green",
    State.FAILED: "red",
    State.CANCELLED: "magenta",
}


class CliError(Exception):
    """A problem the user can fix: printed without a traceback, exit code ``code``."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


# -- options ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    target: str  # MODULE:ATTR naming a Jobwire instance
    queues: tuple[str, ...] | None = None
    concurrency: int | None = None  # async jobs at once
    processes: int | None = None  # job processes
    threads: int | None = None  # thread jobs at once
    url: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitOptions:
    job: str
    args: dict[str, Any] = field(default_factory=dict)
    app: str | None = None
    url: str | None = None
    delay: float | None = None
    priority: int | None = None
    queue: str | None = None
    idempotency_key: str | None = None
    owner: str = "anonymous"
    follow: bool = False
    force: bool = False  # without app: queue a name that no server or worker registered


@dataclass(frozen=True, slots=True)
class HealthOptions:
    url: str | None = None
    app: str | None = None
    host: str | None = None  # None: this machine's (the pod's) hostname
    max_age: float | None = None  # None: the lease, after which a worker counts as lost


@dataclass(frozen=True, slots=True)
class TopOptions:
    url: str | None = None
    app: str | None = None
    interval: float = 1.0
    refreshes: int | None = None  # None: until interrupted
    once: bool = False


@dataclass(frozen=True, slots=True)
class StatusOptions:
    job_id: str
    url: str | None = None
    app: str | None = None
    as_json: bool = False


@dataclass(frozen=True, slots=True)
class ListOptions:
    states: tuple[State, ...] = ()
    job: str | None = None
    owner: str | None = None
    before: str | None = None
    limit: int = 20
    url: str | None = None
    app: str | None = None
    as_json: bool = False


@dataclass(frozen=True, slots=True)
class CancelOptions:
    job_id: str | None
    url: str | None = None
    app: str | None = None
    # Without a job id: every unfinished job that matches these (all of them must hold).
    bulk: BulkQuery | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class PurgeOptions:
    bulk: BulkQuery  # its states: queued only
    url: str | None = None
    app: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class SchedulesOptions:
    app: str
    url: str | None = None
    as_json: bool = False
    pause: str | None = None  # the schedule to pause…
    resume: str | None = None  # …or to resume


@dataclass(frozen=True, slots=True)
class JobsOptions:
    url: str | None = None
    app: str | None = None
    as_json: bool = False


@dataclass(frozen=True, slots=True)
class RetryOptions:
    job_id: str
    url: str | None = None
    app: str | None = None


@dataclass(frozen=True, slots=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    db: Path = Path("jobwire-demo.db")


# -- parsing helpers (pure) ---------------------------------------------------------------


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``["n=10", "name=bob", 'urls=["a"]']`` → ``{"n": 10, "name": "bob", "urls": ["a"]}``.

    A value that is valid JSON is taken as JSON; anything else stays a string
    (``name='"10"'`` passes the string "10").
    """
    args: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise CliError(f"expected KEY=VALUE, got {item!r}")
        if not _KEY.match(key):
            raise CliError(f"argument name {key!r} is not a valid identifier (in {item!r})")
        if key in args:
            raise CliError(f"argument {key!r} given twice")
        try:
            args[key] = json.loads(raw)
        except ValueError:
            args[key] = raw
    return args


def parse_queues(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    queues = tuple(part.strip() for part in text.split(",") if part.strip())
    if not queues:
        raise CliError(f"--queues: expected comma-separated queue names, got {text!r}")
    for name in queues:
        check_queue(name)
    return queues


def check_queue(name: str) -> str:
    if not re.match(QUEUE_PATTERN, name):
        raise CliError(f"queue name {name!r}: expected 1-64 of A-Z a-z 0-9 _ . : -")
    return name


def parse_states(values: Sequence[str]) -> tuple[State, ...]:
    states: list[State] = []
    for value in values:
        for name in value.split(","):
            name = name.strip().lower()
            if not name:
                continue
            try:
                states.append(State(name))
            except ValueError:
                allowed = ", ".join(s.value for s in State)
                raise CliError(f"unknown state {name!r}; expected one of {allowed}") from None
    return tuple(dict.fromkeys(states))


def redact(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def load_jobwire(target: str) -> Jobwire:
    """Import ``MODULE:ATTR`` (or ``MODULE`` holding exactly one Jobwire) from the cwd."""
    module_name, sep, attr = target.partition(":")
    if not module_name or (sep and not attr):
        raise CliError(f"expected MODULE:ATTR (e.g. myapp:jobs), got {target!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # like uvicorn: the current directory is importable
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise CliError(f"cannot import {module_name!r} from {cwd}: {exc}") from None
        raise
    found = _instances(module)
    if not sep:
        if len(found) != 1:
            what = f"several ({', '.join(found)})" if found else "none"
            raise CliError(
                f"module {module_name!r} holds {what} Jobwire instances; name one as MODULE:ATTR"
            )
        attr = found[0]
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(
                f"module {module_name!r} has no attribute {attr!r}{_suggest(module_name, found)}"
            ) from None
    if not isinstance(obj, Jobwire):
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        raise CliError(
            f"{module_name}:{attr} is a {kind}, not a Jobwire instance"
            f"{_suggest(module_name, found)}"
        )
    return obj


def _instances(module: ModuleType) -> list[str]:
    return [name for name, value in vars(module).items() if isinstance(value, Jobwire)]


def _suggest(module_name: str, found: list[str]) -> str:
    if not found:
        return ""
    return "; did you mean " + " or ".join(f"{module_name}:{name}" for name in found) + "?"


def configured(jobs: Jobwire, **changes: Any) -> Jobwire:
    """``jobs`` with settings overridden (None means "keep"), as a new unopened instance."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return jobs
    url = changes.pop("url", None)
    try:
        return jobs.using(url, **changes)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _store_jobwire(url: str | None, app: str | None, *, existing: bool = False) -> Jobwire:
    """The Jobwire whose store a command reads; with ``existing``, refuse to create one.

    A command that only reads (``ls``, ``status``, ``top``, ``health``, ``cancel``)
    pointed at a SQLite file that is not there was given the wrong path: creating an
    empty store there would hide the mistake behind "no jobs".
    """
    if app is not None:
        jobs = configured(load_jobwire(app), url=url)
    else:
        try:
            jobs = Jobwire(url)
        except ConfigError as exc:
            raise CliError(str(exc)) from None
    if existing:
        _require_existing_store(jobs)
    return jobs


def _require_existing_store(jobs: Jobwire) -> None:
    try:
        store = jobs.store
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if isinstance(store, SQLiteStore) and not store.path.exists():
        raise CliError(
            f"no job store at {store.path} ({env_name('url')}={redact(jobs.settings.url)}): "
            f"nothing was created; point --url or {env_name('url')} at the store your app "
            "and workers use",
            NOT_OK,
        )


def cli_view(job: Job, no_worker: bool | None = None) -> dict[str, Any]:
    """The job view of the HTTP API, without links, with its owner."""
    view = job_view(job, "", no_worker=no_worker)
    view.pop("links", None)
    view["owner"] = job.owner
    return view


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def say(console: Console, text: str | Text) -> None:
    """One line as given: no markup, emoji codes or highlighting, never folded."""
    console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)


# -- running commands ---------------------------------------------------------------------

O_contra = TypeVar("O_contra", contravariant=True)


class Command(Protocol[O_contra]):
    def __call__(
        self, opts: O_contra, out: Console, err: Console | None = None
    ) -> Coroutine[Any, Any, int]: ...


def command(
    fn: Callable[[O_contra, Console, Console], Coroutine[Any, Any, int]],
) -> Command[O_contra]:
    """``run_x(opts, out, err=None)``: usage and store errors become a message and a code."""

    async def run(opts: O_contra, out: Console, err: Console | None = None) -> int:
        err = err or out
        try:
            return await fn(opts, out, err)
        except CliError as exc:
            err.print(Text(f"error: {_naming_url(str(exc))}", style="red"), soft_wrap=True)
            return exc.code
        except ConfigError as exc:
            err.print(Text(f"error: {_naming_url(str(exc))}", style="red"), soft_wrap=True)
            return USAGE
        except StoreUnavailable as exc:
            err.print(Text(f"error: the job store is unavailable: {exc}", style="red"))
            return NOT_OK

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


@command
async def run_worker(opts: WorkerOptions, out: Console, err: Console) -> int:
    """Run a standalone worker until SIGTERM or SIGINT, then drain gracefully."""
    base = load_jobwire(opts.target)
    if not base.registry:
        raise CliError(f"{opts.target} has no registered jobs; nothing to run")
    jobs = configured(
        base,
        url=opts.url,
        queues=opts.queues,
        async_concurrency=opts.concurrency,
        process_concurrency=opts.processes,
        thread_concurrency=opts.threads,
    )
    s = jobs.settings
    err.print(
        Text.assemble(
            ("jobwire worker", "bold"),
            f" {opts.target} on {redact(s.url)}; queues {','.join(s.queues)}; "
            f"jobs {', '.join(sorted(jobs.registry))}; async {s.async_concurrency}, "
            f"threads {s.thread_concurrency}, processes {s.process_concurrency}",
        ),
        soft_wrap=True,
    )
    await jobs.run_worker(s.queues)
    return 0


@command
async def run_submit(opts: SubmitOptions, out: Console, err: Console) -> int:
    """Enqueue a job, print its id; with ``follow``, follow it to its end."""
    if opts.queue is not None:
        check_queue(opts.queue)
    if opts.priority is not None and not -MAX_PRIORITY <= opts.priority <= MAX_PRIORITY:
        raise CliError(f"--priority must be within ±{MAX_PRIORITY}, got {opts.priority}")
    if opts.delay is not None and (opts.delay < 0 or not math.isfinite(opts.delay)):
        raise CliError(f"--delay must be a number of seconds >= 0, got {opts.delay}")
    jobs = _store_jobwire(opts.url, opts.app)
    async with jobs:
        try:
            if opts.app is not None:
                handle: JobHandle[Any] = await jobs.enqueue(
                    opts.job,
                    opts.args,
                    delay=opts.delay,
                    priority=opts.priority,
                    queue=opts.queue,
                    idempotency_key=opts.idempotency_key,
                    owner=opts.owner,
                )
                job, created = handle.job, handle.created
            else:
                if not opts.force:
                    await check_known_name(jobs, opts.job)
                job, created = await _enqueue_unchecked(jobs, opts)
        except InvalidArguments as exc:
            err.print(Text(f"error: invalid arguments for job {opts.job!r}:", style="red"))
            for line in validation_lines(exc.errors):
                err.print(Text(f"  {line}"), soft_wrap=True)
            return USAGE
        except UnknownJobError as exc:
            raise CliError(str(exc)) from None
        except IdempotencyConflict as exc:
            raise CliError(str(exc)) from None
        say(out, job.id)
        if not created:
            err.print(
                Text(f"idempotency key {opts.idempotency_key!r}: an existing job, not a new one"),
                soft_wrap=True,
            )
        if not opts.follow:
            return 0
        return await follow_job(jobs, job.id, out, err)


async def check_known_name(jobs: Jobwire, name: str) -> None:
    """Refuse a job name that no server or worker has registered in this store: a typo
    would otherwise wait in its queue, unnoticed, for a worker that never comes."""
    known = await jobs.store.job_names()
    if name in known:
        return
    if not known:
        raise CliError(
            f"unknown job {name!r}: no server or worker has registered any job in this store "
            "yet (start your app or `jobwire worker` first); --force queues it anyway"
        )
    close = difflib.get_close_matches(name, list(known), n=3)
    guess = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ";"
    raise CliError(
        f"unknown job {name!r}{guess} known jobs: {', '.join(sorted(known))}; "
        "--force queues it anyway"
    )


async def _enqueue_unchecked(jobs: Jobwire, opts: SubmitOptions) -> tuple[Job, bool]:
    """Straight into the store: the worker validates the arguments when it runs the job."""
    fingerprint = None
    if opts.idempotency_key is not None:
        fingerprint = fingerprint_of(
            {
                "job": opts.job,
                "args": opts.args,
                "delay": opts.delay,
                "run_at": str(None),
                "priority": opts.priority,
                "queue": opts.queue,
            }
        )
    new = NewJob(
        id=new_job_id(),
        job=opts.job,
        args=opts.args,
        queue=opts.queue or "default",
        priority=opts.priority or 0,
        max_attempts=1,
        scheduled_at=schedule(opts.delay, None),
        owner=opts.owner,
        idempotency_key=opts.idempotency_key,
        fingerprint=fingerprint,
        options=with_crash_budget({}, jobs.settings.max_crashes),
    )
    [stored] = await jobs.store.enqueue([new])
    return stored.job, stored.created


def validation_lines(errors: list[dict[str, Any]]) -> list[str]:
    """Pydantic errors as ``field: message (got value)``, one per line."""
    lines = []
    for error in errors:
        where = ".".join(str(part) for part in error["loc"]) or "(arguments)"
        line = f"{where}: {error['msg']}"
        if error["type"] != "missing":
            line += f" (got {dumps(error.get('input'))})"
        lines.append(line)
    return lines


async def follow_job(jobs: Jobwire, job_id: str, out: Console, err: Console) -> int:
    """Show the job's events until its end; 0 when it succeeded, 1 otherwise."""
    job = await jobs.get(job_id)
    if job is None:
        raise CliError(f"job {job_id} not found", NOT_OK)
    with FollowView(err, job.job) as view:
        watch = asyncio.create_task(_watch_for_workers(jobs, job_id, view))
        try:
            async for event in jobs.events(job_id):
                view.show(event)
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
    final = await jobs.get(job_id)
    if final is None:
        raise CliError(f"job {job_id} disappeared while followed (pruned?)", NOT_OK)
    return report_outcome(final, out, err)


def no_worker_text(job: Job) -> str:
    return (
        f"no live worker runs job {job.job!r} on queue {job.queue!r}: "
        "it stays queued until one starts"
    )


async def _watch_for_workers(jobs: Jobwire, job_id: str, view: FollowView) -> None:
    """While the job is queued, say when no live worker would take it, and when one
    comes. Workers announce themselves only by their registry entries, so this reads
    the registry every third of a lease (as often as workers write it)."""
    every = jobs.settings.lease_seconds / 3
    missing = False
    while True:
        try:
            job = await jobs.get(job_id)
            if job is None or job.terminal:
                return
            now_missing = await jobs.no_worker(job)
        except JobwireError:
            now_missing = missing  # the store is away: nothing new to say
        else:
            if now_missing and not missing:
                view.waiting(no_worker_text(job))
            elif missing and not now_missing and job.state is State.QUEUED:
                view.waiting(None)
        missing = now_missing
        await asyncio.sleep(every)


def report_outcome(job: Job, out: Console, err: Console) -> int:
    elapsed = ""
    if job.started_at is not None and job.finished_at is not None:
        elapsed = f" in {job.finished_at - job.started_at:.2f} s"
    attempts = f"after {job.attempts} attempt{'s' if job.attempts != 1 else ''}"
    if job.state is State.SUCCEEDED:
        err.print(Text(f"succeeded{elapsed} {attempts}", style="green"), soft_wrap=True)
        say(out, dumps(job.result))
        return 0
    if job.state is State.FAILED:
        error = job.error or {}
        err.print(
            Text.assemble(
                (f"failed {attempts}: ", "red"),
                f"{error.get('type', 'Error')}: {error.get('message', '')}",
            ),
            soft_wrap=True,
        )
        return NOT_OK
    if job.state is State.CANCELLED:
        err.print(Text(f"cancelled {attempts}", style="magenta"), soft_wrap=True)
        return NOT_OK
    err.print(Text(f"job {job.id} is {job.state.value}"), soft_wrap=True)
    return NOT_OK


class FollowView:
    """A live progress bar on a terminal; plain lines elsewhere (logs, pipes, CI)."""

    def __init__(self, console: Console, name: str) -> None:
        self.console = console
        self.name = name
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_line: tuple[Any, ...] | None = None

    def __enter__(self) -> FollowView:
        if self.console.is_terminal:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.fields[job]}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._progress.start()
            self._task = self._progress.add_task("queued", total=None, job=self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def note(self, text: Text) -> None:
        self.console.print(text, soft_wrap=True)

    def waiting(self, reason: str | None) -> None:
        """The job waits for a worker (``reason``), or a worker for it has come (None)."""
        if reason is None:
            self._describe("queued")
            self.note(Text("a worker that runs this job is live now", style="dim"))
            return
        self._describe("queued: no live worker")
        self.note(Text(f"warning: {reason}", style="yellow"))

    def show(self, event: Event) -> None:
        data = event.data
        if event.type is EventType.PROGRESS:
            self._show_progress(data.get("current", 0), data.get("total"), data.get("message"))
        elif event.type is EventType.OUTPUT:
            self.note(Text.assemble(("output ", "cyan"), dumps(data.get("output"))))
        elif event.type is EventType.STARTED:
            self._describe("running")
            self.note(
                Text(f"attempt {data.get('attempt')} started on {data.get('worker')}", style="dim")
            )
        elif event.type is EventType.RETRYING:
            error = data.get("error") or {}
            wait = ""
            if isinstance(data.get("next_run_at"), int | float):
                wait = f"; retrying in {max(0.0, data['next_run_at'] - time.time()):.1f} s"
            self._describe("retrying")
            self.note(
                Text.assemble(
                    (f"attempt {data.get('attempt')} failed: ", "yellow"),
                    f"{error.get('type', 'Error')}: {error.get('message', '')}{wait}",
                )
            )
        elif event.type is EventType.QUEUED and data.get("released"):
            self._describe("queued")
            self.note(Text("released by a stopping worker; queued again", style="dim"))
        elif event.type.terminal:
            self._describe(event.type.value)

    def _describe(self, text: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=text)

    def _show_progress(self, current: Any, total: Any, message: Any) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, completed=current, total=total, description=message or ""
            )
            return
        percent = None
        if isinstance(total, int | float) and total and isinstance(current, int | float):
            percent = int(100 * current / total)
        key = (percent, message) if percent is not None else (current, message)
        if key == self._last_line:
            return
        self._last_line = key
        amount = f"{current}/{total}" if total is not None else f"{current}"
        line = f"progress {amount}"
        if percent is not None:
            line += f" ({percent}%)"
        if message:
            line += f" {message}"
        self.note(Text(line, style="dim"))


@command
async def run_health(opts: HealthOptions, out: Console, err: Console) -> int:
    """Exit 0 when a worker on this host wrote its registry heartbeat recently.

    The heartbeat is written by the worker's event loop every third of the lease, so a
    fresh one says the loop is responsive and the store reachable from the worker: the
    liveness probe of a worker-only pod.
    """
    host = opts.host or socket.gethostname()
    async with _store_jobwire(opts.url, opts.app, existing=True) as jobs:
        max_age = jobs.settings.lease_seconds if opts.max_age is None else opts.max_age
        workers = [w for w in await jobs.store.list_workers() if w.host == host]
    if not workers:
        raise CliError(f"no worker is registered on host {host}", NOT_OK)
    now = time.time()
    freshest = max(workers, key=lambda w: w.last_heartbeat)
    age = now - freshest.last_heartbeat
    if age > max_age:
        raise CliError(
            f"worker {freshest.id}: last heartbeat {age:.1f} s ago, expected within {max_age:g} s",
            NOT_OK,
        )
    say(out, f"ok: worker {freshest.id} heartbeat {age:.1f} s ago")
    return 0


@command
async def run_top(opts: TopOptions, out: Console, err: Console) -> int:
    """Show jobs per queue and state and the workers, refreshed every ``interval``."""
    from rich.live import Live

    from jobwire import metrics, top

    async with _store_jobwire(opts.url, opts.app, existing=True) as jobs:
        source = redact(jobs.settings.url)
        lease = jobs.settings.lease_seconds

        async def frame() -> Any:
            return top.render(await metrics.snapshot(jobs.store, lease), source)

        if opts.once:
            out.print(await frame())
            return 0
        with Live(await frame(), console=out, auto_refresh=False) as live:
            shown = 0
            while opts.refreshes is None or shown < opts.refreshes:
                await asyncio.sleep(opts.interval)
                live.update(await frame(), refresh=True)
                shown += 1
    return 0


@command
async def run_status(opts: StatusOptions, out: Console, err: Console) -> int:
    """Print one job; exit 1 when it does not exist."""
    async with _store_jobwire(opts.url, opts.app, existing=True) as jobs:
        job = await jobs.get(opts.job_id)
        if job is None:
            raise CliError(f"job {opts.job_id} not found", NOT_OK)
        no_worker = await jobs.no_worker(job)
    if opts.as_json:
        say(out, dumps(cli_view(job, no_worker)))
        return 0
    out.print(status_table(job, no_worker))
    return 0


def status_table(job: Job, no_worker: bool = False) -> Table:
    view = cli_view(job)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("id", job.id)
    table.add_row("job", job.job)
    table.add_row("state", Text(job.state.value, style=_STATE_STYLE[job.state]))
    table.add_row("attempts", f"{job.attempts}/{job.max_attempts}")
    if job.crashes:
        table.add_row("lost", f"{job.crashes}/{job.max_crashes} (worker killed or cut off)")
    table.add_row("queue", f"{job.queue} (priority {job.priority})")
    table.add_row("owner", job.owner)
    table.add_row("args", Text(dumps(job.args)))
    if job.progress is not None:
        table.add_row("progress", _progress_text(job))
    if job.result is not None:
        table.add_row("result", Text(dumps(job.result)))
    if job.error is not None:
        table.add_row("error", Text(f"{job.error.get('type')}: {job.error.get('message')}"))
    if job.cancel_requested and not job.terminal:
        table.add_row("cancel", "requested")
    if no_worker:
        table.add_row("worker", Text(no_worker_text(job), style="yellow"))
    for name in ("created_at", "scheduled_at", "started_at", "finished_at"):
        if view[name] is not None:
            table.add_row(name.removesuffix("_at"), view[name])
    return table


def _progress_text(job: Job) -> str:
    p = job.progress
    if p is None:
        return ""
    text = f"{p.current:g}" + (f"/{p.total:g}" if p.total is not None else "")
    if p.total:
        text += f" ({100 * p.current / p.total:.0f}%)"
    return text + (f" {p.message}" if p.message else "")


@command
async def run_ls(opts: ListOptions, out: Console, err: Console) -> int:
    """List jobs, newest first."""
    if not 1 <= opts.limit <= 1000:
        raise CliError(f"--limit must be within 1..1000, got {opts.limit}")
    query = ListQuery(
        owner=opts.owner, states=opts.states, job=opts.job, before_id=opts.before, limit=opts.limit
    )
    async with _store_jobwire(opts.url, opts.app, existing=True) as jobs:
        page = await jobs.store.list(query)
    if opts.as_json:
        body = {"items": [cli_view(j) for j in page.items], "next_cursor": page.next_cursor}
        say(out, dumps(body))
        return 0
    if not page.items:
        err.print("no jobs")
        return 0
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("id", no_wrap=True)
    table.add_column("job", overflow="ellipsis", min_width=8, max_width=24)
    table.add_column("state", no_wrap=True)
    table.add_column("tries", no_wrap=True, justify="right")
    table.add_column("done", no_wrap=True, justify="right")
    table.add_column("created (UTC)", no_wrap=True)
    for job in page.items:
        p = job.progress
        table.add_row(
            job.id,
            job.job,
            Text(job.state.value, style=_STATE_STYLE[job.state]),
            f"{job.attempts}/{job.max_attempts}",
            f"{100 * p.current / p.total:.0f}%" if p is not None and p.total else "",
            datetime.fromtimestamp(job.created_at, UTC).strftime("%m-%d %H:%M"),
        )
    out.print(table)
    if page.next_cursor:
        err.print(Text(f"more: --before {page.next_cursor}", style="dim"), soft_wrap=True)
    return 0


@command
async def run_cancel(opts: CancelOptions, out: Console, err: Console) -> int:
    """Cancel a job, or every unfinished job matching filters: 0 when accepted; 1 when
    the job is not found or already ended."""
    if opts.job_id is None:
        return await _bulk_cancel(opts, out, err)
    async with _store_jobwire(opts.url, opts.app, existing=True) as jobs:
        try:
            job = await jobs.cancel(opts.job_id)
        except JobNotFound:
            raise CliError(f"job {opts.job_id} not found", NOT_OK) from None
        except AlreadyTerminal as exc:
            raise CliError(str(exc), NOT_OK) from None
    if job.state is State.CANCELLED:
        say(out, f"cancelled {job.id}")
    else:
        say(
            out,
            f"cancel requested for {job.id}: it is {job.state.value}; it stops at its next "
            "check, or is stopped after the grace period",
        )
    return 0


async def _bulk_cancel(opts: CancelOptions, out: Console, err: Console) -> int:
    query = opts.bulk
    if query is None:
        raise CliError("give a job ID, or filters: --job, --queue, --state, --owner, --created-*")
    async with _store_jobwire(opts.url, opts.app, existing=True) as jobs:
        if opts.dry_run:
            count = len(await jobs.store.matching(query))
            say(out, f"{count} job{'' if count == 1 else 's'} would be cancelled")
            return 0
        count = await jobs.store.cancel_matching(query)
    say(
        out,
        f"cancelled {count} job{'' if count == 1 else 's'} (running ones stop at their next check)",
    )
    return 0


@command
async def run_purge(opts: PurgeOptions, out: Console, err: Console) -> int:
    """Delete the queued jobs that match, with their logs."""
    async with _store_jobwire(opts.url, opts.app, existing=True) as jobs:
        if opts.dry_run:
            count = len(await jobs.store.matching(opts.bulk))
            say(out, f"{count} queued job{'' if count == 1 else 's'} would be deleted")
            return 0
        count = await jobs.store.purge_queued(opts.bulk)
    say(out, f"deleted {count} queued job{'' if count == 1 else 's'}")
    return 0


def parse_bulk(
    states: Sequence[str],
    job: str | None,
    queue: str | None,
    owner: str | None,
    created_after: str | None,
    created_before: str | None,
) -> BulkQuery | None:
    """The filters of a bulk cancel; None when none is given."""
    chosen = parse_states(states)
    if not (chosen or job or queue or owner or created_after or created_before):
        return None
    try:
        return BulkQuery(
            owner=owner,
            states=chosen or (State.QUEUED, State.RUNNING),
            job=job,
            queue=queue,
            created_after=_when("--created-after", created_after),
            created_before=_when("--created-before", created_before),
        )
    except ValueError as exc:
        raise CliError(f"--state: {exc}") from None


def _when(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option}: expected an ISO 8601 time, got {text!r}") from None
    if at.tzinfo is None:
        raise CliError(f"{option}: give a time zone (e.g. {text}Z), got {text!r}")
    return at.timestamp()


@command
async def run_schedules(opts: SchedulesOptions, out: Console, err: Console) -> int:
    """List the app's schedules, or pause or resume one (in the store, for every process)."""
    jobs = configured(load_jobwire(opts.app), url=opts.url)
    _require_existing_store(jobs)
    async with jobs:
        name = opts.pause or opts.resume
        if name is not None:
            try:
                info = await jobs.pause_schedule(name, paused=opts.pause is not None)
            except ScheduleNotFound:
                known = ", ".join(sorted(jobs.schedules)) or "none"
                raise CliError(f"no schedule {name!r} in {opts.app} (declared: {known})") from None
            say(out, f"{'paused' if info.paused else 'resumed'} {name}")
            return 0
        infos = await jobs.schedule_infos()
    if opts.as_json:
        say(out, dumps({"items": [info.as_dict() for info in infos]}))
        return 0
    if not infos:
        err.print(f"no schedules declared in {opts.app}")
        return 0
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    for column in ("name", "cron", "tz", "job", "state", "next (UTC)", "last (UTC)", "outcome"):
        table.add_column(column, no_wrap=True)
    for info in infos:
        s = info.schedule
        table.add_row(
            s.name,
            s.cron,
            s.timezone,
            s.job,
            "paused" if info.paused else "active",
            _utc(info.next_fire_at),
            _utc(info.last_fire_at),
            info.last_outcome or "",
        )
    out.print(table)
    return 0


def _utc(at: float | None) -> str:
    return "" if at is None else datetime.fromtimestamp(at, UTC).strftime("%m-%d %H:%M:%S")


@command
async def run_jobs(opts: JobsOptions, out: Console, err: Console) -> int:
    """The job names: with --app, as registered with their options; without, as the
    store recorded them from the servers and workers that ran."""
    if opts.app is not None:
        jobs = configured(load_jobwire(opts.app), url=opts.url)
        items = [_spec_item(spec) for _, spec in sorted(jobs.registry.items())]
    else:
        async with _store_jobwire(opts.url, None, existing=True) as jobs:
            names = await jobs.store.job_names()
        items = [{"job": n, "last_seen": _iso(at)} for n, at in sorted(names.items())]
    if opts.as_json:
        say(out, dumps({"items": items}))
        return 0
    if not items:
        err.print("no jobs registered" if opts.app else "no job names recorded in this store")
        return 0
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    # The name and the options everyone sets in columns; the rest, only where given, in
    # one folded column: a column per option would not fit a terminal.
    main = [c for c in ("job", "executor", "queue", "retries", "timeout", "last_seen")
            if c in items[0]]  # fmt: skip
    for column in main:
        table.add_column(column, no_wrap=True)
    if opts.app is not None:
        table.add_column("other options", overflow="fold")
    for item in items:
        cells = ["" if item.get(c) is None else str(item[c]) for c in main]
        if opts.app is not None:
            given = [(k, v) for k, v in item.items() if k not in main and v not in _UNSET]
            cells.append(", ".join(_option_text(k, v) for k, v in given))
        table.add_row(*cells)
    out.print(table)
    return 0


_UNSET: tuple[Any, ...] = (None, False, (), [], {})


def _option_text(name: str, value: Any) -> str:
    if isinstance(value, dict):
        return f"{name}=" + ",".join(f"{k}:{v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return f"{name}=" + ",".join(str(getattr(v, "__name__", v)) for v in value)
    return f"{name}={value}"


def _spec_item(spec: JobSpec[Any, Any]) -> dict[str, Any]:
    """A registered job and its options, each option as plain JSON."""
    item: dict[str, Any] = {"job": spec.name}
    for option in dataclasses.fields(spec.options):
        value = getattr(spec.options, option.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        item[option.name] = value
    item["schedules"] = [s.name for s in spec.app.schedules.values() if s.job == spec.name]
    return item


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


@command
async def run_retry(opts: RetryOptions, out: Console, err: Console) -> int:
    """Retry a failed or cancelled job as a new job with its arguments and options (its
    ``retry_of`` names the original), as the dashboard's Retry does: 0 when done (or
    already done: one retry per job); 1 when not found or not failed or cancelled."""
    async with _store_jobwire(opts.url, opts.app, existing=True) as jobs:
        try:
            enqueued = await jobs.store.retry(opts.job_id, new_job_id())
        except JobNotFound:
            raise CliError(f"job {opts.job_id} not found", NOT_OK) from None
        except InvalidTransition as exc:
            raise CliError(f"{exc}: only failed or cancelled jobs are retried", NOT_OK) from None
    if enqueued.created:
        say(out, f"retried {opts.job_id} as {enqueued.job.id}")
    else:
        say(out, f"{opts.job_id} was already retried as {enqueued.job.id}")
    return 0


@command
async def run_demo(opts: DemoOptions, out: Console, err: Console) -> int:
    """Serve the demo app with embedded workers until SIGINT or SIGTERM."""
    from jobwire import demo

    db = opts.db.expanduser().resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    # The dashboard is opened without credentials (it logs a warning saying so), like the
    # demo's API: both are for a look on this machine.
    jobs = configured(demo.jobs, url=f"sqlite:///{db}", dashboard_open=True)
    app = demo.create_app(jobs)
    if opts.host not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            Text(
                f"warning: serving on {opts.host}: the demo has no authentication; anyone who "
                "can reach this address can submit and cancel jobs",
                style="yellow",
            ),
            soft_wrap=True,
        )
    # Open SSE and WebSocket streams would otherwise hold shutdown forever: uvicorn waits
    # for connections before the lifespan (and the embedded worker's drain) may end.
    config = uvicorn.Config(
        app,
        host=opts.host,
        port=opts.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )

    def announce(server: uvicorn.Server) -> None:
        port = opts.port
        for srv in getattr(server, "servers", []):
            for sock in srv.sockets:
                port = sock.getsockname()[1]
                break
        host = opts.host if opts.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        base = f"http://{host}:{port}"
        print_demo_urls(out, base, db, getattr(app.state, "demo_jobs", []))

    server = _AnnouncingServer(config, announce)
    with _signals_handled_by_server():
        await server.serve()
    return 0 if server.started else NOT_OK


def print_demo_urls(out: Console, base: str, db: Path, seeded: Sequence[Job]) -> None:
    out.print(Text.assemble(("jobwire demo", "bold green"), f" running at {base}  (Ctrl-C stops)"))
    lines = [
        f"  {'dashboard, live:':<36}{base}/jobs/ui",
        f"  {'API docs, a console for every job:':<36}{base}/docs",
        f"  {'jobs, newest first:':<36}{base}/jobs",
        *(f"  {job.job + ':':<36}{base}/jobs/{job.id}?wait=30" for job in seeded),
        "  submit one and follow it from a shell:",
        f"    curl -s -X POST {base}/jobs -H 'content-type: application/json' "
        """-d '{"job": "crunch", "args": {"n": 5000000}}'""",
        f"    {this_jobwire()} submit crawl pages=5 --url {shlex.quote(f'sqlite:///{db}')} "
        "--follow",
    ]
    for line in lines:
        say(out, line)


def this_jobwire() -> str:
    """How a shell runs this installation's ``jobwire``, whatever its PATH: the script
    beside the running interpreter (a virtualenv's ``bin/``), else ``python -m jobwire``."""
    interpreter = Path(sys.executable)
    script = interpreter.with_name("jobwire.exe" if os.name == "nt" else "jobwire")
    if script.is_file():
        return shlex.quote(str(script))
    return f"{shlex.quote(str(interpreter))} -m jobwire"


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that calls ``on_started`` once it listens."""

    def __init__(
        self, config: uvicorn.Config, on_started: Callable[[uvicorn.Server], None]
    ) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._on_started(self)


@contextlib.contextmanager
def _signals_handled_by_server() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal; let
    that re-raise land on a no-op so a requested stop exits 0, not by the signal."""

    def ignore(signum: int, frame: FrameType | None) -> None:
        return None

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, ignore)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- the typer layer ----------------------------------------------------------------------

cli = typer.Typer(
    name="jobwire",
    help="Durable long-running jobs for FastAPI: run workers, submit and follow jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Whether --url (rather than JOBWIRE_URL) gave this run its store, so that errors name
# the one the user wrote.
_URL_FROM_FLAG: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "url_from_flag", default=False
)


def _naming_url(message: str) -> str:
    """A message about the store's URL, naming ``--url`` when the flag gave it."""
    if not _URL_FROM_FLAG.get():
        return message
    env = env_name("url")
    return message.replace(f"({env}=", "(--url ").replace(f"{env}:", "--url:")


def _note_url_source(
    ctx: typer.Context, param: typer.CallbackParam, value: str | None
) -> str | None:
    source = ctx.get_parameter_source(param.name or "url")
    _URL_FROM_FLAG.set(source is not None and source.name == "COMMANDLINE")
    return value


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar=env_name("url"),
        show_envvar=True,
        callback=_note_url_source,
        help="The store's URL.",
        show_default="sqlite:///./jobwire.db",
    ),
]
AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        metavar="MODULE:ATTR",
        help="Your Jobwire instance: validates arguments and takes its store from its settings.",
    ),
]
StoreAppOption = Annotated[
    str | None,
    typer.Option(
        "--app", metavar="MODULE:ATTR", help="Your Jobwire instance, to use its store settings."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200  # piped into grep or a file: do not fold tables at 80 columns
    return console


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        choice = Settings.from_env().event_loop
    except ConfigError:
        return None  # the command reports the bad setting itself, as it always has
    try:
        return loop_factory(choice)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def _execute(coro: Coroutine[Any, Any, int]) -> None:
    try:
        factory = _event_loop_factory()
    except typer.BadParameter:
        coro.close()
        raise
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            code = runner.run(coro)
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


def _setup_logging() -> None:
    logger = logging.getLogger("jobwire")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _checked(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except CliError as exc:
        raise typer.BadParameter(str(exc)) from None


@cli.command()
def worker(
    target: Annotated[
        str, typer.Argument(metavar="MODULE:ATTR", help="Your Jobwire instance, e.g. myapp:jobs.")
    ],
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            "-q",
            envvar=env_name("queues"),
            show_envvar=True,
            help="Comma-separated queues to take jobs from.",
            show_default="default",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            envvar=env_name("async_concurrency"),
            show_envvar=True,
            help="async jobs running at once.",
            show_default="100",
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            "-p",
            min=1,
            envvar=env_name("process_concurrency"),
            show_envvar=True,
            help="Job processes for process jobs.",
            show_default="CPU count",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            "-t",
            min=1,
            envvar=env_name("thread_concurrency"),
            show_envvar=True,
            help="thread jobs running at once.",
            show_default="8",
        ),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Run a worker for the jobs of MODULE:ATTR until SIGTERM or SIGINT (then drain)."""
    opts = WorkerOptions(
        target=target,
        queues=_checked(lambda: parse_queues(queues)),
        concurrency=concurrency,
        processes=processes,
        threads=threads,
        url=url,
    )
    _setup_logging()
    _execute(run_worker(opts, _console(), _console(stderr=True)))


@cli.command(
    help="Submit a job and print its id. With --app its arguments are validated here; "
    "without, it goes straight into the store at --url and the worker validates them, "
    "once its name is one a server or worker has registered there (or with --force)."
)
def submit(
    name: Annotated[str, typer.Argument(metavar="JOB", help="The job's registered name.")],
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[KEY=VALUE]...",
            help="Arguments; values are JSON when valid JSON (n=10, urls='[\"a\"]'), "
            "else strings (name=bob).",
            show_default=False,
        ),
    ] = None,
    app: AppOption = None,
    url: UrlOption = None,
    delay: Annotated[
        float | None, typer.Option("--delay", min=0, help="Run no sooner than S seconds from now.")
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option("--priority", min=-MAX_PRIORITY, max=MAX_PRIORITY, help="Higher runs first."),
    ] = None,
    queue: Annotated[
        str | None, typer.Option("--queue", help="Queue.", show_default="the job's")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key", help="Submitting the same key again returns the same job."
        ),
    ] = None,
    owner: Annotated[str, typer.Option("--owner", help="The job's owner.")] = "anonymous",
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Follow the job to its end; exit 0 if it succeeded."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Without --app: queue the job even if no server or worker has registered "
            "its name in the store.",
        ),
    ] = False,
) -> None:
    """Submit a job and print its id."""
    opts = SubmitOptions(
        job=name,
        args=_checked(lambda: parse_assignments(assignments or [])),
        app=app,
        url=url,
        delay=delay,
        priority=priority,
        queue=_checked(lambda: check_queue(queue) if queue is not None else None),
        idempotency_key=idempotency_key,
        owner=owner,
        follow=follow,
        force=force,
    )
    _execute(run_submit(opts, _console(), _console(stderr=True)))


@cli.command()
def status(
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    url: UrlOption = None,
    app: StoreAppOption = None,
    json_: JsonOption = False,
) -> None:
    """Show a job; exit 1 if there is no such job."""
    _execute(run_status(StatusOptions(job_id, url, app, json_), _console(), _console(stderr=True)))


@cli.command("ls")
def list_jobs(
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            "-s",
            help="queued, running, succeeded, failed or cancelled; repeat or comma-separate.",
        ),
    ] = None,
    job: Annotated[str | None, typer.Option("--job", "-j", help="Only jobs of this name.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only jobs of this owner.")] = None,
    before: Annotated[
        str | None, typer.Option("--before", metavar="ID", help="Older than this job (paging).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    url: UrlOption = None,
    app: StoreAppOption = None,
    json_: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    opts = ListOptions(
        states=_checked(lambda: parse_states(state or [])),
        job=job,
        owner=owner,
        before=before,
        limit=limit,
        url=url,
        app=app,
        as_json=json_,
    )
    _execute(run_ls(opts, _console(), _console(stderr=True)))


@cli.command()
def health(
    url: UrlOption = None,
    app: StoreAppOption = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Check workers of this host.", show_default="this hostname"),
    ] = None,
    max_age: Annotated[
        float | None,
        typer.Option(
            "--max-age",
            min=0.0,
            help="Oldest acceptable heartbeat, in seconds.",
            show_default="JOBWIRE_LEASE_SECONDS",
        ),
    ] = None,
) -> None:
    """Exit 0 if a worker on this host heartbeats (a Kubernetes liveness probe)."""
    opts = HealthOptions(url, app, host, max_age)
    _execute(run_health(opts, _console(), _console(stderr=True)))


@cli.command()
def top(
    url: UrlOption = None,
    app: StoreAppOption = None,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between refreshes.")
    ] = 1.0,
    refreshes: Annotated[
        int | None,
        typer.Option("--refreshes", min=0, help="Stop after N refreshes.", show_default="never"),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
) -> None:
    """Jobs per queue and state, and the workers, live in the terminal."""
    opts = TopOptions(url, app, interval, refreshes, once)
    try:
        _execute(run_top(opts, _console(), _console(stderr=True)))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@cli.command()
def cancel(
    job_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="The job; or filters instead.")
    ] = None,
    job: Annotated[str | None, typer.Option("--job", "-j", help="Jobs of this name.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Jobs of this queue.")] = None,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", "-s", help="queued and/or running (default: both)."),
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Jobs of this owner.")] = None,
    created_after: Annotated[
        str | None, typer.Option("--created-after", metavar="TIME", help="ISO 8601, inclusive.")
    ] = None,
    created_before: Annotated[
        str | None, typer.Option("--created-before", metavar="TIME", help="ISO 8601, exclusive.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say how many jobs match.")
    ] = False,
    url: UrlOption = None,
    app: StoreAppOption = None,
) -> None:
    """Cancel a job, or every unfinished job matching the filters (a queued one at once, a
    running one cooperatively, then by force)."""
    bulk = _checked(
        lambda: parse_bulk(state or [], job, queue, owner, created_after, created_before)
    )
    if job_id is not None and bulk is not None:
        raise typer.BadParameter("give a job ID or filters, not both")
    opts = CancelOptions(job_id, url, app, bulk=bulk, dry_run=dry_run)
    _execute(run_cancel(opts, _console(), _console(stderr=True)))


@cli.command()
def purge(
    job: Annotated[str | None, typer.Option("--job", "-j", help="Jobs of this name.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Jobs of this queue.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Jobs of this owner.")] = None,
    created_after: Annotated[
        str | None, typer.Option("--created-after", metavar="TIME", help="ISO 8601, inclusive.")
    ] = None,
    created_before: Annotated[
        str | None, typer.Option("--created-before", metavar="TIME", help="ISO 8601, exclusive.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say how many match.")] = False,
    url: UrlOption = None,
    app: StoreAppOption = None,
) -> None:
    """Delete the queued jobs that match (they never run), with their logs."""
    bulk = _checked(
        lambda: parse_bulk(["queued"], job, queue, owner, created_after, created_before)
    )
    if not (job or queue or owner or created_after or created_before):
        raise typer.BadParameter("give at least one filter: --job, --queue, --owner, --created-*")
    _execute(run_purge(PurgeOptions(bulk, url, app, dry_run), _console(), _console(stderr=True)))


schedules_cli = typer.Typer(
    help="The schedules your app declares: list them, pause or resume one.",
    no_args_is_help=False,
)
cli.add_typer(schedules_cli, name="schedules")
ScheduleAppOption = Annotated[
    str,
    typer.Option(
        "--app", metavar="MODULE:ATTR", help="Your Jobwire instance, which declares them."
    ),
]


@schedules_cli.callback(invoke_without_command=True)
def schedules(
    ctx: typer.Context,
    app: Annotated[
        str | None,
        typer.Option(
            "--app", metavar="MODULE:ATTR", help="Your Jobwire instance, which declares them."
        ),
    ] = None,
    url: UrlOption = None,
    json_: JsonOption = False,
) -> None:
    """List the schedules with their next and last fire times and last outcome."""
    if ctx.invoked_subcommand is not None:
        return
    if app is None:
        raise typer.BadParameter("schedules are declared in code: give --app MODULE:ATTR")
    opts = SchedulesOptions(app, url, json_)
    _execute(run_schedules(opts, _console(), _console(stderr=True)))


@schedules_cli.command("pause")
def pause_schedule(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    app: ScheduleAppOption,
    url: UrlOption = None,
) -> None:
    """Pause a schedule in every server and worker until resumed."""
    opts = SchedulesOptions(app, url, pause=name)
    _execute(run_schedules(opts, _console(), _console(stderr=True)))


@schedules_cli.command("resume")
def resume_schedule(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    app: ScheduleAppOption,
    url: UrlOption = None,
) -> None:
    """Resume a schedule; the ticks that passed while it was paused do not fire."""
    opts = SchedulesOptions(app, url, resume=name)
    _execute(run_schedules(opts, _console(), _console(stderr=True)))


@cli.command("jobs")
def list_job_names(
    url: UrlOption = None,
    app: Annotated[
        str | None,
        typer.Option(
            "--app",
            metavar="MODULE:ATTR",
            help="Your Jobwire instance: its jobs with their options. Without it: the names "
            "the store recorded from the servers and workers that ran.",
        ),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """The registered job names, with their options."""
    _execute(run_jobs(JobsOptions(url, app, json_), _console(), _console(stderr=True)))


@cli.command()
def retry(
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    url: UrlOption = None,
    app: StoreAppOption = None,
) -> None:
    """Retry a failed or cancelled job as a new job with the same arguments."""
    _execute(run_retry(RetryOptions(job_id, url, app), _console(), _console(stderr=True)))


@cli.command()
def demo(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="0 picks a free port.")
    ] = 8000,
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind; keep it local.")
    ] = "127.0.0.1",
    db: Annotated[Path, typer.Option("--db", help="The demo's SQLite file.")] = Path(
        "jobwire-demo.db"
    ),
) -> None:
    """Serve a demo app with example jobs and embedded workers on SQLite."""
    _setup_logging()
    _execute(run_demo(DemoOptions(host, port, db), _console(), _console(stderr=True)))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
