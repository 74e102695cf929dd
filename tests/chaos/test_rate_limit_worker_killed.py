"""kill -9 of a worker holding a concurrency permit: the permit expires with its lease,
so the limited jobs run again, one at a time, instead of waiting for ever."""

from __future__ import annotations

import time

import pytest

from tests.chaos.conftest import Chaos
from tests.chaos.engines import ENGINES
from tests.chaos.harness import WORKER_STARTED, enqueue, side_effects, until

LEASE_SECONDS = 2.0
LEASE = {"JOBWIRE_LEASE_SECONDS": str(LEASE_SECONDS)}


@pytest.mark.slow
@pytest.mark.parametrize("chaos", ENGINES, indirect=True)
def test_a_killed_workers_concurrency_permit_expires_with_its_lease(chaos: Chaos) -> None:
    first = chaos.procs.worker("worker-1", **LEASE)
    first.wait_for(WORKER_STARTED)
    [held] = enqueue(chaos.url, "solo", [{"seconds": 60.0}])
    until(
        lambda: any(e.type == "output" for e in chaos.ledger.events(held)),
        20,
        "the first limited job to start",
    )
    [waiting] = enqueue(chaos.url, "solo", [{"seconds": 0.5}])
    # Refused while the first holds the only permit: handed back, never started.
    until(
        lambda: any(e.data.get("released") for e in chaos.ledger.events(waiting)),
        20,
        "the second job to be refused a permit",
    )
    assert [(e.what, e.job_id) for e in side_effects(chaos.effects)] == [("start", held)]

    first.kill_group()
    killed_at = time.monotonic()
    second = chaos.procs.worker("worker-2", **LEASE)
    second.wait_for(WORKER_STARTED)
    for job_id in (held, waiting):
        until(
            lambda job_id=job_id: (
                (r := chaos.ledger.job(job_id)) is not None and r.state == "succeeded"
            ),
            30,
            f"job {job_id} to succeed",
        )
    done_after = time.monotonic() - killed_at

    effects = [(e.what, e.job_id) for e in side_effects(chaos.effects)]
    assert effects[0] == ("start", held)
    after_kill = effects[1:]
    # One at a time after the kill too: every start is followed by its own end.
    assert len(after_kill) == 4
    assert all(
        after_kill[i][0] == "start" and after_kill[i + 1] == ("end", after_kill[i][1])
        for i in (0, 2)
    ), after_kill
    assert {after_kill[0][1], after_kill[2][1]} == {held, waiting}
    assert done_after < LEASE_SECONDS + 15  # freed by the lease, not held for ever
