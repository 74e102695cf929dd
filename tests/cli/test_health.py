"""``jobwire health``: exit 0 while a worker on this host heartbeats, 1 otherwise."""

from __future__ import annotations

import signal
import socket
import time

from jobwire.cli import HealthOptions, run_health
from jobwire.store import store_from_url
from jobwire.store.base import WorkerInfo
from tests.cli.conftest import Captured, Proc, run_cli


def test_health_exits_0_while_a_worker_runs_here_and_1_after_it_drained(
    worker_process: Proc, db_url: str
) -> None:
    healthy = run_cli("health", "--url", db_url)
    assert healthy.returncode == 0, healthy.stderr
    assert "ok: worker" in healthy.stdout
    worker_process.signal(signal.SIGTERM)
    assert worker_process.wait() == 0
    gone = run_cli("health", "--url", db_url)
    assert gone.returncode == 1
    assert f"no worker is registered on host {socket.gethostname()}" in gone.stderr


async def test_health_exits_1_when_the_heartbeat_is_older_than_allowed(
    db_url: str, out: Captured, err: Captured
) -> None:
    store = store_from_url(db_url)
    await store.open()
    now = time.time()
    try:
        await store.register_worker(
            WorkerInfo("stuck", socket.gethostname(), 1, ("default",), 1, "0", now - 60, now - 45)
        )
    finally:
        await store.close()

    code = await run_health(HealthOptions(url=db_url, max_age=30), out.console, err.console)
    assert code == 1
    assert "worker stuck: last heartbeat 45" in err.text
    assert "expected within 30 s" in err.text
    assert await run_health(HealthOptions(url=db_url, max_age=60), out.console) == 0
    other_host = HealthOptions(url=db_url, host="elsewhere", max_age=60)
    assert await run_health(other_host, out.console, err.console) == 1
