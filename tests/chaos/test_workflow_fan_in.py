"""A fan-in of 1,000 steps while its workers are killed with SIGKILL and restarted at
random: the workflow completes with one fan-in job, which receives every result in
order and completes exactly once, with no leader."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time

import pytest

from jobwire import WorkflowInfo, chain, group
from jobwire.store.base import ListQuery
from tests.chaos.conftest import Chaos
from tests.chaos.engines import ENGINES
from tests.chaos.harness import Proc, side_effects, until
from tests.chaos.workflow_app import fan_in, jobs, part

STEPS = 1_000
WORKERS = 2
CHAOS_SECONDS = float(os.environ.get("CHAOS_WORKFLOW_SECONDS", "8"))
ENV = {"JOBWIRE_LEASE_SECONDS": "2", "JOBWIRE_WORKFLOW_INTERVAL_SECONDS": "0.2"}


def start(chaos: Chaos, name: str) -> Proc:
    return chaos.procs.cli_worker(name, "tests.chaos.workflow_app:jobs", **ENV)


def submit(url: str) -> str:
    async def go() -> str:
        async with jobs.using(url, embedded_workers=False) as app:
            flow = chain(group(*(part.si(n=n) for n in range(STEPS))), fan_in.s())
            return (await app.submit_workflow(flow)).id

    return asyncio.run(go())


def read(url: str, workflow_id: str) -> tuple[WorkflowInfo, list[str]]:
    async def go() -> tuple[WorkflowInfo, list[str]]:
        async with jobs.using(url, embedded_workers=False) as app:
            info = await app.workflow(workflow_id)
            assert info is not None
            page = await app.store.list(ListQuery(job="fan_in", limit=50))
            return info, [job.id for job in page.items]

    return asyncio.run(go())


@pytest.mark.slow
@pytest.mark.parametrize("chaos", ENGINES, indirect=True)
def test_a_thousand_step_fan_in_completes_once_while_workers_are_killed(chaos: Chaos) -> None:
    seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    names = [f"worker-{i}" for i in range(WORKERS)]
    running = {name: start(chaos, name) for name in names}
    workflow_id = submit(chaos.url)
    kills = 0
    deadline = time.monotonic() + CHAOS_SECONDS
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.3, 1.2))
        victim = rng.choice(names)
        running[victim].kill_group()  # mid-step, mid-pass or mid-start-up alike
        running[victim].wait(10)
        kills += 1
        running[victim] = start(chaos, victim)

    def ended() -> tuple[WorkflowInfo, list[str]] | None:
        info, fan_ins = read(chaos.url, workflow_id)
        return (info, fan_ins) if info.ended else None

    info, fan_ins = until(ended, 45, "the workflow to end", every=0.5)
    for proc in running.values():
        proc.signal(signal.SIGTERM)
    for proc in running.values():
        proc.wait(30)
    print(f"\n[{chaos.engine.name}] seed {seed}: {kills} kills, {STEPS}-step fan-in")

    assert info.state == "succeeded", f"seed {seed}: {info.state}"
    assert len(fan_ins) == 1, f"seed {seed}: fan-in jobs {fan_ins}"
    assert info.result(info.steps[-1].step.name) == sum(range(STEPS))  # all, in order
    events = chaos.ledger.events(fan_ins[0])
    assert [e.type for e in events].count("succeeded") == 1
    ends = [e for e in side_effects(chaos.effects) if e.what == "end"]
    assert len(ends) >= 1  # it may have run again after a kill; it completed once
