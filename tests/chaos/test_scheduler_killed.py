"""Servers and workers killed with SIGKILL and restarted at random while a one-second
schedule ticks: every tick of the run gets exactly one job, none twice, with no leader
and no beat process."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from jobwire import Job, Jobwire
from jobwire.store.base import ListQuery
from tests.chaos.conftest import Chaos
from tests.chaos.engines import ENGINES
from tests.chaos.harness import Proc, free_port, until

SERVERS, WORKERS = 3, 2
SECONDS = float(os.environ.get("CHAOS_SCHEDULE_SECONDS", "35"))
MIN_TICKS = 30  # a slow start-up on a busy machine costs ticks: the calm makes up for it
ENV = {
    "JOBWIRE_SCHEDULE_INTERVAL_SECONDS": "0.2",
    "JOBWIRE_EMBEDDED_WORKERS": "false",  # servers fire schedules; workers run the jobs
    "JOBWIRE_LEASE_SECONDS": "2",
}


def start(chaos: Chaos, name: str) -> Proc:
    if name.startswith("server"):
        argv = [
            sys.executable, "-m", "uvicorn", "tests.chaos.schedule_app:app",
            "--host", "127.0.0.1", "--port", str(free_port()), "--log-level", "warning",
        ]  # fmt: skip
    else:
        argv = [
            str(Path(sys.executable).with_name("jobwire")),
            "worker",
            "tests.chaos.schedule_app:jobs",
        ]
    proc = Proc(name, argv, {**chaos.procs.env, **ENV})
    chaos.procs.started.append(proc)
    return proc


def scheduled_jobs(url: str) -> list[Job]:
    async def read() -> list[Job]:
        found: list[Job] = []
        async with Jobwire(url, embedded_workers=False) as jobs:
            cursor = None
            while True:
                page = await jobs.store.list(ListQuery(before_id=cursor, limit=500))
                found.extend(page.items)
                if page.next_cursor is None:
                    return found
                cursor = page.next_cursor

    return asyncio.run(read())


@pytest.mark.slow
@pytest.mark.parametrize("chaos", ENGINES, indirect=True)
def test_every_tick_makes_exactly_one_job_while_schedulers_are_killed_at_random(
    chaos: Chaos,
) -> None:
    seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    names = [f"server-{i}" for i in range(SERVERS)] + [f"worker-{i}" for i in range(WORKERS)]
    running = {name: start(chaos, name) for name in names}
    kills = 0
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.3, 1.5))
        victim = rng.choice(names)
        running[victim].kill_group()  # SIGKILL, mid-pass or mid-start-up alike
        running[victim].wait(10)
        kills += 1
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0.5, 2.0))  # left down a while, perhaps with others
        running[victim] = start(chaos, victim)
    # Calm: one more tick fired after the chaos, then every process stopped.
    calm_from = time.time()

    def calm_done() -> bool:
        fired = scheduled_jobs(chaos.url)
        return len(fired) >= MIN_TICKS and any(j.options["tick"] > calm_from + 1 for j in fired)

    until(calm_done, 60, f"{MIN_TICKS} ticks and a tick after the chaos", every=0.5)
    for proc in running.values():
        proc.signal(signal.SIGTERM)
    # What this test holds is one job per tick; a process slow to stop is killed (and
    # named in the summary) rather than failing it.
    slow_to_stop = []
    for proc in running.values():
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            slow_to_stop.append(f"{proc.name}: {proc.output_tail()[-500:]}")
            proc.kill_group()
            proc.wait(10)

    jobs = scheduled_jobs(chaos.url)
    per_tick = Counter(job.options["tick"] for job in jobs)
    ticks = sorted(per_tick)
    twice = {tick: n for tick, n in per_tick.items() if n > 1}
    expected = [ticks[0] + i for i in range(int(ticks[-1] - ticks[0]) + 1)]
    print(
        f"\n[{chaos.engine.name}] seed {seed}: {kills} kills in {SECONDS:.0f} s, "
        f"{len(ticks)} ticks, {len(jobs)} jobs; slow to stop on SIGTERM: {slow_to_stop}"
    )
    assert not twice, f"seed {seed}: ticks with more than one job: {twice}"
    assert ticks == expected, f"seed {seed}: ticks without a job: {set(expected) - set(ticks)}"
    assert len(ticks) >= MIN_TICKS
    assert {job.job for job in jobs} == {"tick"}
    assert {job.idempotency_key for job in jobs} == {
        f"schedule:every-second:{int(t)}" for t in ticks
    }  # the key each scheduler enqueued it under
