"""A job that kills its worker every time ends failed after its crash budget, instead of
taking the worker down forever, while healthy jobs beside it, without retries, still
complete once: the crashes it causes are not theirs to pay for."""

from __future__ import annotations

import signal
import time

import pytest

from jobwire.model import DEFAULT_MAX_CRASHES
from tests.chaos.conftest import Chaos
from tests.chaos.engines import ENGINES
from tests.chaos.harness import WORKER_STARTED, Proc, enqueue, side_effects

ENV = {"JOBWIRE_LEASE_SECONDS": "1"}
HEALTHY = 1000


@pytest.mark.slow
@pytest.mark.parametrize("chaos", ENGINES, indirect=True)
def test_a_job_killing_its_worker_every_time_fails_after_its_crash_budget_and_others_succeed_once(
    chaos: Chaos,
) -> None:
    [poison] = enqueue(chaos.url, "poison", [{}])
    healthy = enqueue(chaos.url, "noop", [{"n": i} for i in range(HEALTHY)])

    # The supervisor: restart the worker whenever it dies, until every job has ended.
    began = time.monotonic()
    deadline = began + 90
    deaths: list[int | None] = []
    worker: Proc = chaos.procs.worker("worker-0", **ENV)
    while True:
        unfinished = chaos.ledger.unfinished()
        if unfinished == 0:
            break
        if not worker.alive():
            deaths.append(worker.popen.returncode)
            assert len(deaths) <= DEFAULT_MAX_CRASHES, (
                f"the worker died {len(deaths)} times:\n{worker.output_tail()}"
            )
            worker = chaos.procs.worker(f"worker-{len(deaths)}", **ENV)
        assert time.monotonic() < deadline, (
            f"{unfinished} jobs unfinished after 90 s; states {chaos.ledger.states()}"
        )
        time.sleep(0.05)  # the polling interval of the supervisor, not a synchronisation
    elapsed = time.monotonic() - began
    worker.wait_for(WORKER_STARTED)
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0

    jobs = chaos.ledger.jobs()
    row = jobs[poison]
    assert (row.state, row.crashes, row.max_attempts) == ("failed", DEFAULT_MAX_CRASHES, 1), row
    assert row.error is not None and row.error["type"] == "CrashBudgetExhausted"
    assert f"lost its worker {DEFAULT_MAX_CRASHES} times" in row.error["message"]
    poison_starts = [e for e in side_effects(chaos.effects) if e.job_id == poison]
    assert [e.attempt for e in poison_starts] == [1] * DEFAULT_MAX_CRASHES, "never charged"
    assert deaths == [1] * DEFAULT_MAX_CRASHES, "the worker died only of the poison job"

    succeeded = chaos.ledger.count("succeeded")
    failed = [jobs[j] for j in healthy if jobs[j].state != "succeeded"]
    assert not failed, f"bystanders paid for the poison: {len(failed)}, e.g. {failed[:2]}"
    assert all(succeeded[j] == 1 for j in healthy), "a healthy job completed twice"
    assert sorted(jobs[j].result for j in healthy) == list(range(HEALTHY))
    assert all(jobs[j].attempts == 1 for j in healthy), "a crash was charged to an attempt"
    effects = side_effects(chaos.effects)
    runs = [e.job_id for e in effects if e.what == "start" and e.job_id != poison]
    assert set(runs) == set(healthy)
    lost = sum(jobs[j].crashes > 0 for j in healthy)
    print(
        f"\n[{chaos.engine.name}] poison job failed after {len(deaths)} worker deaths, "
        f"{elapsed:.1f} s; {HEALTHY} healthy jobs without retries succeeded once: {lost} were "
        f"lost with a crash and ran again ({len(runs) - HEALTHY} repeated runs)"
    )
