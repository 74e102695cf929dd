"""Fixtures for the CLI tests: a temporary store, captured consoles, and real processes
whose output is read line by line so tests wait on what a process says, not on time."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from rich.console import Console

from jobwire import Jobwire
from tests.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[2]
JOBWIRE = Path(sys.executable).with_name("jobwire")
START_TIMEOUT = 60.0  # a cold interpreter on a busy CI box imports FastAPI, pydantic, rich
STOP_TIMEOUT = 30.0


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


class Captured:
    """A rich console writing to a string, as a pipe would see it (no terminal)."""

    def __init__(self, *, terminal: bool = False) -> None:
        self.buffer = io.StringIO()
        self.console = Console(
            file=self.buffer, width=200, force_terminal=terminal, color_system=None
        )

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.text.splitlines()]


@pytest.fixture
def out() -> Captured:
    return Captured()


@pytest.fixture
def err() -> Captured:
    return Captured()


@pytest.fixture
async def worker(db_url: str) -> AsyncIterator[Jobwire]:
    """An in-process worker for the test jobs, over the test's store."""
    jobs = cli_app.jobs.using(db_url)
    async with jobs:
        running = await jobs.start_worker()
        try:
            yield jobs
        finally:
            await running.drain(grace=2.0)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="200", NO_COLOR="1")
    env.update(extra)
    return env


class Proc:
    """A child process whose stdout and stderr lines are collected as they come."""

    def __init__(self, args: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None):
        if not JOBWIRE.exists():
            raise AssertionError(f"the jobwire command is not installed at {JOBWIRE}")
        self.args = args
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=env or subprocess_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a signal to the test runner's group never reaches it
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.SimpleQueue[tuple[str, str | None]] = queue.SimpleQueue()
        self._readers = [
            threading.Thread(target=self._read, args=("stdout",), daemon=True),
            threading.Thread(target=self._read, args=("stderr",), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str) -> None:
        stream = getattr(self.popen, name)
        for line in stream:
            getattr(self, name).append(line.rstrip("\n"))
            self._lines.put((name, line.rstrip("\n")))
        self._lines.put((name, None))

    def wait_for(
        self, pattern: str, stream: str = "stderr", timeout: float = START_TIMEOUT
    ) -> re.Match[str]:
        """The first line of ``stream`` matching ``pattern``; fails on exit or deadline."""
        regex = re.compile(pattern)
        for line in getattr(self, stream):
            if match := regex.search(line):
                return match
        deadline = time.monotonic() + timeout
        closed: set[str] = set()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no line matching {pattern!r} within {timeout} s\n{self.report()}"
                )
            try:
                name, line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                closed.add(name)
                if name == stream or closed == {"stdout", "stderr"}:
                    raise AssertionError(f"{stream} closed before {pattern!r}\n{self.report()}")
                continue
            if name == stream and (match := regex.search(line)):
                return match

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running after {timeout} s\n{self.report()}") from None
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        """Kill the process group if still running, and release the pipes."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        for reader in self._readers:
            reader.join(5)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()

    def report(self) -> str:
        return (
            f"command: {' '.join(self.args)}\nexit: {self.popen.poll()}\n"
            "--- stdout\n" + "\n".join(self.stdout) + "\n--- stderr\n" + "\n".join(self.stderr)
        )


def jobwire_cmd(*args: str) -> list[str]:
    return [str(JOBWIRE), *args]


def run_cli(*args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``jobwire ARGS`` to completion from the repository root."""
    return subprocess.run(
        jobwire_cmd(*args),
        cwd=ROOT,
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def worker_process(db_url: str) -> Iterator[Proc]:
    """``jobwire worker tests.cli.app:jobs`` in a real process; stopped with SIGTERM."""
    proc = Proc(jobwire_cmd("worker", "tests.cli.app:jobs", "--url", db_url, "--processes", "1"))
    try:
        proc.wait_for(r"worker \S+ started")
        yield proc
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0, proc.report()
    finally:
        proc.kill()
