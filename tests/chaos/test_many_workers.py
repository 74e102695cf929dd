"""Four standalone workers drain 20,000 jobs while one of them is killed with SIGKILL
every two seconds and replaced: no job is lost, none completes twice.

The verdict comes from what the jobs themselves left: their ``succeeded`` events in the
store's log (one per job, with the job's own result) and the start and end lines each
attempt appended to the side-effect file (one attempt never runs twice, and the attempt
that completed a job really ran to its end).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.chaos.conftest import Chaos
from tests.chaos.engines import SERVER_ENGINES, StoreLedger
from tests.chaos.fleet_app import jobs as fleet_jobs
from tests.chaos.harness import WORKER_STARTED, Ev, Proc, enqueue_batches, side_effects

JOBS = 20_000
WORKERS = 4
KILL_EVERY = 2.0
TARGET = "tests.chaos.fleet_app:jobs"
# Short leases: a killed worker's jobs are queued again within about 2.7 s.
ENV = {"JOBWIRE_LEASE_SECONDS": "2", "JOBWIRE_POSTGRES_POOL_MAX": "4"}


@dataclass
class Fleet:
    chaos: Chaos
    workers: list[Proc] = field(default_factory=list)
    killed: list[Proc] = field(default_factory=list)
    started: int = 0

    def add(self) -> Proc:
        self.started += 1
        worker = self.chaos.procs.cli_worker(f"worker-{self.started}", TARGET, **ENV)
        self.workers.append(worker)
        return worker

    def kill_oldest(self) -> None:
        """kill -9 the worker that has had longest to claim jobs; start its replacement."""
        victim = self.workers.pop(0)
        victim.signal(signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL, victim.output_tail()
        self.killed.append(victim)
        self.add()


@dataclass
class Tally:
    """The store's event log, read as it grows."""

    ledger: StoreLedger
    cursor: int = 0
    events: list[Ev] = field(default_factory=list)
    succeeded: set[str] = field(default_factory=set)

    def read(self) -> int:
        new, self.cursor = self.ledger.feed(self.cursor)
        self.events.extend(new)
        self.succeeded.update(e.job_id for e in new if e.type == "succeeded")
        return len(self.succeeded)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("chaos", SERVER_ENGINES, indirect=True)
def test_four_workers_drain_20000_jobs_exactly_once_while_one_is_killed_every_two_seconds(
    chaos: Chaos,
) -> None:
    began = time.monotonic()
    ids = enqueue_batches(chaos.url, fleet_jobs.spec("tally"), [{"n": i} for i in range(JOBS)])
    argument = dict(zip(ids, range(JOBS), strict=True))
    enqueued_in = time.monotonic() - began
    ledger = chaos.ledger
    assert isinstance(ledger, StoreLedger)
    tally = Tally(ledger)

    fleet = Fleet(chaos)
    for _ in range(WORKERS):
        fleet.add()
    for worker in fleet.workers:
        worker.wait_for(WORKER_STARTED, timeout=30)
    workers_up = time.monotonic()

    # Kill one worker every two seconds until every job has succeeded.
    next_kill = workers_up + KILL_EVERY
    deadline = workers_up + 240
    while tally.read() < JOBS:
        now = time.monotonic()
        assert now < deadline, (
            f"{JOBS - len(tally.succeeded)} of {JOBS} jobs not done after "
            f"{now - workers_up:.0f} s: {ledger.states()}; not done: "
            f"{[r for r in ledger.jobs().values() if r.id not in tally.succeeded][:4]}"
            f"\n{chaos.procs.logs()[-3000:]}"
        )
        if now >= next_kill:
            fleet.kill_oldest()
            next_kill += KILL_EVERY
        time.sleep(min(0.2, max(0.0, next_kill - time.monotonic())))
    drained_in = time.monotonic() - workers_up

    # Graceful stop of the survivors: each had started, and each exits cleanly.
    for worker in fleet.workers:
        worker.wait_for(WORKER_STARTED, timeout=30)
        worker.signal(signal.SIGTERM)
    for worker in fleet.workers:
        assert worker.wait(30) == 0, worker.output_tail()
    tally.read()

    events = tally.events
    succeeded = Counter(e.job_id for e in events if e.type == "succeeded")
    lost = [job_id for job_id in ids if job_id not in succeeded]
    twice = [job_id for job_id, n in succeeded.items() if n > 1]
    unexpected_jobs = {e.job_id for e in events} - set(ids)
    other_outcomes = Counter(e.type for e in events if e.type in ("failed", "cancelled"))
    wrong_results = [
        e.job_id
        for e in events
        if e.type == "succeeded" and e.data["result"] != argument.get(e.job_id)
    ]
    lease_expired = {e.job_id for e in events if e.type == "queued" and e.data.get("lost")}
    # A lost run is handed back uncharged: the next run of the job has the same number.
    lost_runs = Counter(
        (e.job_id, e.data["attempt"]) for e in events if e.type == "queued" and e.data.get("lost")
    )

    effects = side_effects(chaos.effects)
    lines = Counter((e.what, e.job_id, e.attempt) for e in effects)
    attempt_run_twice = [
        key for key, n in lines.items() if key[0] == "start" and n > 1 + lost_runs[key[1:]]
    ]
    unexpected_effects = {e.job_id for e in effects} - set(ids)
    completed_by = {e.job_id: e.data["attempt"] for e in events if e.type == "succeeded"}
    completed_without_end = [
        job_id
        for job_id, attempt in completed_by.items()
        if not 1 <= lines[("start", job_id, attempt)] <= 1 + lost_runs[(job_id, attempt)]
        or not 1 <= lines[("end", job_id, attempt)] <= 1 + lost_runs[(job_id, attempt)]
    ]
    ran_again = sum(
        1 for n in Counter(e.job_id for e in effects if e.what == "start").values() if n > 1
    )
    states = ledger.states()

    print(
        f"\n[{chaos.engine.name}] {JOBS} jobs, {WORKERS} workers, {len(fleet.killed)} kill -9: "
        f"enqueued in {enqueued_in:.1f} s, drained in {drained_in:.1f} s after the "
        f"workers started "
        f"({JOBS / drained_in:.0f} jobs/s), test {time.monotonic() - began:.1f} s; "
        f"lost {len(lost)}, completed twice {len(twice)}, attempts run twice "
        f"{len(attempt_run_twice)}, unexpected {len(unexpected_jobs | unexpected_effects)}; "
        f"{len(lease_expired)} jobs taken back when a lease ran out, {ran_again} ran again"
    )
    assert lost == []
    assert twice == []
    assert unexpected_jobs == set() and unexpected_effects == set()
    assert other_outcomes == Counter()
    assert wrong_results == []
    assert attempt_run_twice == []
    assert completed_without_end == []
    assert states == Counter({"succeeded": JOBS})
    # The chaos really happened: workers died holding jobs, which other workers took back.
    assert len(fleet.killed) >= 3
    assert lease_expired, "no killed worker held a job"
    assert all(completed_by[job_id] == 1 for job_id in lease_expired), "a crash was charged"
