"""Wake-ups are hints: workers whose wake-up connections are killed every five seconds
(``pg_terminate_backend`` of each one's ``LISTEN`` connection, ``CLIENT KILL`` of each
one's pub/sub and doorbell connections) while jobs arrive at 200 a second lose none of
them, and pick them up almost as fast as when nothing is wrong.

Pickup is measured by the jobs themselves: each returns the time its first statement
ran, and its pickup is the time from its ``queued`` event (the store's clock when it
stored the job) to then. Submit→start, from before the submitter's call, is shown too:
it adds the time the submit itself took.
"""

from __future__ import annotations

import asyncio
import re
import signal
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from jobwire import Jobwire
from tests.chaos.conftest import Chaos
from tests.chaos.engines import SERVER_ENGINES, StoreLedger
from tests.chaos.fleet_app import jobs as fleet_jobs
from tests.chaos.harness import WORKER_STARTED, Ev, until

RATE = 200  # jobs a second
HEALTHY_JOBS = 1_000  # 5 s with nothing wrong
FAULTED_JOBS = 10_000  # 50 s…
CUT_EVERY = 5.0  # …with the wake-up connection killed every 5 s
# One worker: a second would double the claims (every wake-up wakes both, one finds
# nothing), which on PostgreSQL costs more than it gives on a loaded machine.
WORKERS = 1
TARGET = "tests.chaos.fleet_app:jobs"
# The default backstop poll, not the chaos suite's shorter one.
ENV = {"JOBWIRE_POLL_SECONDS": "2"}
# What the worker logs when a wake-up connection goes (PostgreSQL, Redis).
LOST = (
    r"LISTEN connection to PostgreSQL was lost|wake-up subscription lost"
    r"|doorbell connection lost"
)


@dataclass
class Phase:
    name: str
    ids: list[str] = field(default_factory=list)
    sent: dict[str, float] = field(default_factory=dict)  # just before each submit
    cuts: list[int] = field(default_factory=list)  # connections killed at each cut
    lag: float = 0.0  # how far behind its schedule the submitter fell at worst


async def submit(url: str, phase: Phase, jobs: int, cut: Callable[[], int] | None = None) -> None:
    """Submit ``jobs`` at RATE a second on a fixed schedule, each without waiting for the
    ones before; every CUT_EVERY seconds (from the start) call ``cut`` in a thread and
    keep what it answers."""
    spec = fleet_jobs.spec("pickup")
    async with Jobwire(url, embedded_workers=False) as client:

        async def one() -> str:
            sent = time.time()
            handle = await client.enqueue(spec, {})
            phase.sent[handle.id] = sent
            return handle.id

        loop = asyncio.get_running_loop()
        start = loop.time()
        submits: list[asyncio.Task[str]] = []
        cuts: list[asyncio.Task[int]] = []
        next_cut = start
        for i in range(jobs):
            due = start + i / RATE
            if cut is not None and due >= next_cut:
                cuts.append(asyncio.create_task(asyncio.to_thread(cut)))
                next_cut += CUT_EVERY
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                phase.lag = max(phase.lag, -delay)
            submits.append(asyncio.create_task(one()))
        phase.ids = list(await asyncio.gather(*submits))
        phase.cuts = list(await asyncio.gather(*cuts))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("chaos", SERVER_ENGINES, indirect=True)
def test_jobs_arriving_while_the_wake_up_connection_is_killed_every_5_s_are_all_picked_up_fast(
    chaos: Chaos,
) -> None:
    began = time.monotonic()
    workers = [chaos.procs.cli_worker(f"worker-{i}", TARGET, **ENV) for i in range(WORKERS)]
    for worker in workers:
        worker.wait_for(WORKER_STARTED, timeout=30)

    def cut() -> int:
        return sum(chaos.engine.cut_wake_ups(worker.pid) for worker in workers)

    ledger = chaos.ledger
    assert isinstance(ledger, StoreLedger)

    healthy, faulted = Phase("healthy"), Phase("faulted")
    asyncio.run(submit(chaos.url, healthy, HEALTHY_JOBS))
    asyncio.run(submit(chaos.url, faulted, FAULTED_JOBS, cut))

    events: list[Ev] = []
    cursor = 0
    submitted = set(healthy.ids) | set(faulted.ids)

    def all_done() -> bool:
        nonlocal cursor
        new, cursor = ledger.feed(cursor)
        events.extend(new)
        done = {e.job_id for e in events if e.type == "succeeded"}
        return done >= submitted

    until(all_done, 60, "every job to succeed", every=0.5)
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(30) == 0, worker.output_tail()
    new, cursor = ledger.feed(cursor)
    events.extend(new)

    outcomes = Counter((e.job_id, e.type) for e in events if e.type in ("succeeded", "failed"))
    lost = [job_id for job_id in submitted if outcomes[(job_id, "succeeded")] != 1]
    unexpected = {e.job_id for e in events} - submitted
    assert lost == [] and unexpected == set(), (len(lost), len(unexpected))
    started = {e.job_id: e.data["result"] for e in events if e.type == "succeeded"}
    queued = {e.job_id: e.at for e in events if e.type == "queued"}
    pickup = {job_id: started[job_id] - queued[job_id] for job_id in submitted}
    figures, submit_to_start = {}, {}
    for phase in (healthy, faulted):
        seconds = [pickup[job_id] for job_id in phase.ids]
        figures[phase.name] = (percentile(seconds, 0.5), percentile(seconds, 0.99), max(seconds))
        whole = [started[job_id] - phase.sent[job_id] for job_id in phase.ids]
        submit_to_start[phase.name] = (percentile(whole, 0.5), percentile(whole, 0.99))
    lost_connections = sum(len(re.findall(LOST, worker.output)) for worker in workers)
    # The slowest pickup of each 5 s of the faulted phase: a listener that recovers late
    # shows as one slow window, a worker that cannot keep up as a rising series.
    window = int(CUT_EVERY * RATE)
    worst = [
        max(pickup[job_id] for job_id in faulted.ids[i : i + window])
        for i in range(0, len(faulted.ids), window)
    ]

    print(
        f"\n[{chaos.engine.name}] {len(submitted)} jobs at {RATE}/s; pickup "
        + "; ".join(
            f"{name} p50 {p50 * 1000:.1f} ms p99 {p99 * 1000:.1f} ms max {top * 1000:.0f} ms"
            for name, (p50, p99, top) in figures.items()
        )
        + "; submit→start "
        + "; ".join(
            f"{name} p50 {p50 * 1000:.1f} ms p99 {p99 * 1000:.1f} ms"
            for name, (p50, p99) in submit_to_start.items()
        )
        + f"; slowest pickup per 5 s while faulted (ms) {[round(w * 1000) for w in worst]}"
        + f"; connections killed {faulted.cuts}, workers logged {lost_connections} losses; "
        f"submitter behind by {max(healthy.lag, faulted.lag) * 1000:.0f} ms at worst; "
        f"lost {len(lost)}, unexpected {len(unexpected)}; test {time.monotonic() - began:.1f} s"
    )
    # Each cut found every worker listening again: killed the connections made after the last.
    assert faulted.cuts == [WORKERS * chaos.engine.wake_up_connections] * 10
    assert lost_connections >= len(faulted.cuts)
    healthy_p50 = figures["healthy"][0]
    faulted_p99 = figures["faulted"][1]
    assert healthy_p50 < 0.050
    assert faulted_p99 < 2.0
