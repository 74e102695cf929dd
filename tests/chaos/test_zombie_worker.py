"""A worker frozen past its lease (SIGSTOP: a long GC pause, a host cut off) comes back
after another worker has rerun and completed its job: its late writes are refused, on
every engine."""

from __future__ import annotations

import os
import signal

import pytest

from tests.chaos.conftest import Chaos
from tests.chaos.engines import ENGINES
from tests.chaos.harness import WORKER_STARTED, enqueue, side_effects, until

LEASE = {"JOBWIRE_LEASE_SECONDS": "2"}


@pytest.mark.slow
@pytest.mark.parametrize("chaos", ENGINES, indirect=True)
def test_a_worker_that_wakes_up_after_losing_its_lease_cannot_complete_the_job_again(
    chaos: Chaos,
) -> None:
    zombie = chaos.procs.worker("zombie", **LEASE)
    zombie_id = zombie.wait_for(WORKER_STARTED).group(1)
    [job_id] = enqueue(chaos.url, "sleeper", [{"seconds": 1.5}])
    # Frozen once its output is stored: no write of the job is in flight, so what the
    # zombie still has to write is exactly what must be refused later.
    until(
        lambda: any(e.type == "output" for e in chaos.ledger.events(job_id)),
        20,
        "the job to start",
    )
    assert len(side_effects(chaos.effects)) == 1
    os.killpg(zombie.pid, signal.SIGSTOP)

    other = chaos.procs.worker("other", **LEASE)
    other_id = other.wait_for(WORKER_STARTED).group(1)
    until(
        lambda: (r := chaos.ledger.job(job_id)) is not None and r.state == "succeeded",
        20,
        "the other worker to run the job again and complete it",
    )
    os.killpg(zombie.pid, signal.SIGCONT)
    # The zombie finds out from its next heartbeat or its refused write.
    zombie.wait_for(r"lease lost|late write refused", timeout=20)

    events = chaos.ledger.events(job_id)
    starts = [(e.data["attempt"], e.data["worker"]) for e in events if e.type == "started"]
    # The zombie's run was lost with its lease: handed back uncharged, run again as 1.
    assert starts == [(1, zombie_id), (1, other_id)]
    [succeeded] = [e for e in events if e.type == "succeeded"]
    assert succeeded.data["attempt"] == 1
    assert events[-1] == succeeded, "nothing was written after the job completed"
    row = chaos.ledger.job(job_id)
    assert row is not None and (row.state, row.attempts, row.crashes) == ("succeeded", 1, 1)

    zombie.signal(signal.SIGTERM)
    assert zombie.wait(15) == 0
    other.signal(signal.SIGTERM)
    assert other.wait(15) == 0
    assert chaos.ledger.events(job_id) == events
