"""Processes to crash, and ways to read what happened without trusting the crashed.

- :class:`Proc` starts a worker or a server in its own process group and keeps every
  line it writes to stderr, so a test waits on a line instead of sleeping.
- :class:`Ledger` reads the SQLite file read-only: job rows and their event logs.
- :func:`side_effects` reads the lines the jobs append to their side-effect file.
- :func:`until` polls a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psutil

if TYPE_CHECKING:
    from jobwire.jobs import JobSpec

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def until(condition: Callable[[], T], timeout: float, what: str, every: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class Proc:
    """A child process in its own session; its stderr lines are kept and can be awaited."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str]) -> None:
        self.name = name
        self.started_at = time.monotonic()
        self.popen = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"{name}-stderr", daemon=True)
        self._reader.start()

    def __repr__(self) -> str:
        return f"<Proc {self.name} pid={self.pid} rc={self.popen.returncode}>"

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """The first stderr line matching ``pattern``; fails on timeout or if it exits."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    found = regex.search(line)
                    if found:
                        return found
                seen = len(self.lines)
                if not self._reader.is_alive():
                    raise AssertionError(
                        f"{self.name} exited (rc={self.popen.poll()}) before printing "
                        f"{pattern!r}:\n{self.output_tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name} did not print {pattern!r} within {timeout} s:\n"
                        f"{self.output_tail()}"
                    )
                self._changed.wait(left)

    def output_tail(self, n: int = 40) -> str:
        with self._changed:
            return "\n".join(self.lines[-n:])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def descendants(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.pid).children(recursive=True)
        return []

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL the process and everything in its process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        rc = self.popen.wait(timeout)
        self._reader.join(timeout)
        return rc

    def cleanup(self) -> None:
        """Kill the group and reap; safe to call on a process that is already gone."""
        self.kill_group()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)
        self._reader.join(5)
        if self.popen.stderr is not None:
            self.popen.stderr.close()


class Procs:
    """Every process a test started, so that teardown leaves none behind."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.started: list[Proc] = []

    def worker(self, name: str = "worker", **env: str) -> Proc:
        argv = [sys.executable, "-m", "tests.chaos.worker_main"]
        proc = Proc(name, argv, {**self.env, **env})
        self.started.append(proc)
        return proc

    def cli_worker(self, name: str, target: str, **env: str) -> Proc:
        """``jobwire worker MODULE:ATTR``: the command users run."""
        argv = [str(Path(sys.executable).with_name("jobwire")), "worker", target]
        proc = Proc(name, argv, {**self.env, **env})
        self.started.append(proc)
        return proc

    def server(self, port: int, name: str = "server", **env: str) -> Proc:
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.chaos.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "info",
        ]
        proc = Proc(name, argv, {**self.env, **env})
        self.started.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} pid={p.pid}\n{p.output}" for p in self.started)

    def cleanup(self) -> None:
        for proc in self.started:
            proc.cleanup()


WORKER_STARTED = r"worker (\S+) started"
SERVER_STARTED = r"Application startup complete"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the store, read-only ----------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    job: str
    state: str
    attempts: int
    max_attempts: int
    error: dict[str, Any] | None
    result: Any
    worker_id: str | None
    crashes: int = 0


@dataclass(frozen=True)
class Ev:
    job_id: str
    seq: int
    type: str
    data: dict[str, Any]
    at: float  # the store's clock when it was appended


class Ledger:
    """Reads jobs and events straight from the SQLite file, read-only."""

    def __init__(self, db: Path) -> None:
        self.db = db

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10.0)
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        finally:
            conn.close()

    def jobs(self) -> dict[str, Row]:
        if not self.db.exists():
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, job, state, attempts, max_attempts, error, result, worker_id, crashes "
                "FROM jobs"
            ).fetchall()
        return {
            r["id"]: Row(
                r["id"],
                r["job"],
                r["state"],
                r["attempts"],
                r["max_attempts"],
                json.loads(r["error"]) if r["error"] else None,
                json.loads(r["result"]) if r["result"] else None,
                r["worker_id"],
                r["crashes"],
            )
            for r in rows
        }

    def job(self, job_id: str) -> Row | None:
        return self.jobs().get(job_id)

    def events(self, job_id: str | None = None) -> list[Ev]:
        if not self.db.exists():
            return []
        sql = "SELECT job_id, seq, type, data, at FROM events"
        args: tuple[str, ...] = ()
        if job_id is not None:
            sql += " WHERE job_id = ?"
            args = (job_id,)
        with self._conn() as conn:
            rows = conn.execute(sql + " ORDER BY job_id, seq", args).fetchall()
        return [Ev(r["job_id"], r["seq"], r["type"], json.loads(r["data"]), r["at"]) for r in rows]

    def count(self, event_type: str) -> Counter[str]:
        """How many events of ``event_type`` each job has."""
        return Counter(e.job_id for e in self.events() if e.type == event_type)

    def unfinished(self) -> int:
        """How many jobs are not yet in a terminal state."""
        if not self.db.exists():
            return 0
        with self._conn() as conn:
            row = conn.execute(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"
            ).fetchone()
        return int(row[0])

    def states(self) -> Counter[str]:
        return Counter(r.state for r in self.jobs().values())


# -- side effects --------------------------------------------------------------------------


@dataclass(frozen=True)
class Effect:
    what: str  # "start" or "end"
    job_id: str
    attempt: int
    pid: int


def side_effects(path: Path) -> list[Effect]:
    if not path.exists():
        return []
    effects = []
    for line in path.read_text().splitlines():
        what, job_id, attempt, pid = line.split()
        effects.append(Effect(what, job_id, int(attempt), int(pid)))
    return effects


# -- submitting from the test process -----------------------------------------------------


def enqueue(url: str, job: str, arguments: Sequence[dict[str, Any]]) -> list[str]:
    """Store jobs through the Python API (no workers here); returns their ids in order."""
    from jobwire import Jobwire

    async def run() -> list[str]:
        client = Jobwire(url, embedded_workers=False)
        from tests.chaos.app import jobs as chaos_jobs

        spec = chaos_jobs.spec(job)
        async with client:
            handles = await asyncio.gather(*(client.enqueue(spec, args) for args in arguments))
        return [h.id for h in handles]

    return asyncio.run(run())


def enqueue_batches(
    url: str, spec: JobSpec[Any, Any], arguments: Sequence[dict[str, Any]], batch: int = 1000
) -> list[str]:
    """Store many jobs of ``spec``, ``batch`` to a transaction; returns their ids in order."""
    from jobwire.app import with_crash_budget
    from jobwire.ids import new_job_id
    from jobwire.model import DEFAULT_MAX_CRASHES
    from jobwire.store import store_from_url
    from jobwire.store.base import NewJob

    new = [
        NewJob(
            id=new_job_id(),
            job=spec.name,
            args=spec.dump_arguments(args),
            queue=spec.options.queue,
            priority=spec.options.priority,
            max_attempts=spec.options.max_attempts,
            timeout=spec.options.timeout,
            options=with_crash_budget({}, spec.options.max_crashes or DEFAULT_MAX_CRASHES),
        )
        for args in arguments
    ]

    async def run() -> None:
        store = store_from_url(url)
        await store.open()
        try:
            for start in range(0, len(new), batch):
                await store.enqueue(new[start : start + batch])
        finally:
            await store.close()

    asyncio.run(run())
    return [n.id for n in new]


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
