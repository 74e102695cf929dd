"""A job that kills its worker every time ends failed after its attempts, instead of
taking the worker down forever, while healthy jobs beside it still complete once."""

from __future__ import annotations

import signal
import time

import pytest

from tests.chaos.conftest import Chaos
from tests.chaos.harness import WORKER_STARTED, Proc, enqueue, side_effects

ENV = {"JOBWIRE_LEASE_SECONDS": "1"}
HEALTHY = 1000


@pytest.mark.slow
def test_a_job_killing_its_worker_every_time_fails_after_three_attempts_and_others_succeed_once(
    chaos: Chaos,
) -> None:
    [poison] = enqueue(chaos.url, "poison", [{}])
    healthy = enqueue(chaos.url, "noop", [{"n": i} for i in range(HEALTHY)])

    # The supervisor: restart the worker whenever it dies, until every job has ended.
    began = time.monotonic()
    deadline = began + 60
    deaths: list[int | None] = []
    worker: Proc = chaos.procs.worker("worker-0", **ENV)
    while True:
        unfinished = chaos.ledger.unfinished()
        if unfinished == 0:
            break
        if not worker.alive():
            deaths.append(worker.popen.returncode)
            assert len(deaths) <= 3, f"the worker died {len(deaths)} times:\n{worker.output_tail()}"
            worker = chaos.procs.worker(f"worker-{len(deaths)}", **ENV)
        assert time.monotonic() < deadline, (
            f"{unfinished} jobs unfinished after 60 s; states {chaos.ledger.states()}"
        )
        time.sleep(0.05)  # the polling interval of the supervisor, not a synchronisation
    elapsed = time.monotonic() - began
    worker.wait_for(WORKER_STARTED)
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0

    jobs = chaos.ledger.jobs()
    row = jobs[poison]
    assert (row.state, row.attempts) == ("failed", 3), row
    assert row.error is not None and row.error["type"] == "LeaseExpired"
    poison_starts = [e for e in side_effects(chaos.effects) if e.job_id == poison]
    assert [e.attempt for e in poison_starts] == [1, 2, 3]
    assert deaths == [1, 1, 1], "the worker died only of the poison job, once per attempt"

    succeeded = chaos.ledger.count("succeeded")
    assert {jobs[j].state for j in healthy} == {"succeeded"}
    assert all(succeeded[j] == 1 for j in healthy), "a healthy job completed twice"
    assert sorted(jobs[j].result for j in healthy) == list(range(HEALTHY))
    effects = side_effects(chaos.effects)
    runs = [e.job_id for e in effects if e.what == "start" and e.job_id != poison]
    assert set(runs) == set(healthy)
    charged = sum(jobs[j].attempts > 1 for j in healthy)
    print(
        f"\npoison job failed after 3 attempts, {len(deaths)} worker deaths, {elapsed:.1f} s; "
        f"{HEALTHY} healthy jobs succeeded once: {charged} were lost with a crash and "
        f"claimed again, {len(runs) - HEALTHY} of them had started before it"
    )
