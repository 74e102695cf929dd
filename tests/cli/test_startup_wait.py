"""``jobwire worker`` started while its PostgreSQL or Redis is away: it waits (by
default without limit, tested in tests/chaos/test_engine_late.py), or, with
``JOBWIRE_STARTUP_TIMEOUT_SECONDS``, exits 1 once that has passed (0: at once)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.cli.conftest import ROOT, jobwire_cmd, subprocess_env
from tests.support.engines import free_port

ENGINES = {
    "postgresql": "postgresql://postgres@127.0.0.1:{port}/postgres",
    "redis": "redis://127.0.0.1:{port}/0",
}


def worker(url: str, timeout: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        jobwire_cmd("worker", "tests.cli.app:jobs"),
        cwd=ROOT,
        env=subprocess_env(JOBWIRE_URL=url, JOBWIRE_STARTUP_TIMEOUT_SECONDS=timeout),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("timeout", ["0", "1.5"])
def test_a_worker_exits_1_when_its_store_stays_away_past_the_startup_timeout(
    engine: str, timeout: str
) -> None:
    proc = worker(ENGINES[engine].format(port=free_port()), timeout)
    started = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - started

    assert proc.returncode == 1, stderr
    assert "error: the job store is unavailable" in stderr
    assert "Traceback" not in stderr
    if timeout == "0":
        assert "start-up: the store is unavailable" not in stderr  # it did not wait
    else:
        assert took >= float(timeout)
        assert "start-up: the store is unavailable" in stderr
        assert "after waiting 1.5 s at start-up (JOBWIRE_STARTUP_TIMEOUT_SECONDS)" in stderr


def test_a_worker_waiting_for_its_store_stops_on_sigterm() -> None:
    proc = worker(ENGINES["redis"].format(port=free_port()), "inf")
    assert proc.stderr is not None
    for line in proc.stderr:
        if "start-up: the store is unavailable" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert "stop requested while waiting for the store" in rest
