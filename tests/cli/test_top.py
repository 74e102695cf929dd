"""``jobwire top``: jobs per queue and state and the workers, read from the store."""

from __future__ import annotations

import asyncio
import re

from jobwire import Jobwire, State
from jobwire.cli import TopOptions, run_top
from tests.cli.conftest import Captured, run_cli


def row(lines: list[str], first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    for line in lines:
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n" + "\n".join(lines))


async def test_top_once_shows_the_counts_per_queue_and_the_live_worker(
    worker: Jobwire, db_url: str, out: Captured
) -> None:
    handles = [await worker.enqueue("add", {"a": 1, "b": 2}) for _ in range(2)]
    handles.append(await worker.enqueue("boom", {}))
    handles.append(await worker.enqueue("flaky", {}))
    for handle in handles:
        await handle.wait(timeout=30)
    held = await worker.enqueue("add", {"a": 0, "b": 0}, delay=3600)
    assert held.job.state is State.QUEUED

    assert await run_top(TopOptions(url=db_url, once=True), out.console) == 0

    # queue, queued, running, succeeded, failed, cancelled, retried, lease expired, p95s
    cells = row(out.lines, "default")
    assert cells[:8] == ["default", "1", "0", "3", "1", "0", "1", "0"]
    assert cells[8].startswith("≤") and cells[9].startswith("≤")
    assert worker.worker is not None
    worker_cells = row(out.lines, worker.worker.id)
    assert worker_cells[-1] == "online"
    assert "workers online 1/1" in out.text


async def create_store(url: str) -> None:
    async with Jobwire(url):
        pass


def test_top_refreshes_the_given_number_of_times_then_exits_0(db_url: str) -> None:
    asyncio.run(create_store(db_url))  # top reads a store, never creates one
    done = run_cli("top", "--url", db_url, "--refreshes", "2", "--interval", "0.05")
    assert done.returncode == 0, done.stderr
    assert "jobwire top" in done.stdout
    assert "queues" in done.stdout and "workers" in done.stdout
