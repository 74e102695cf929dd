"""kill -9 of a standalone worker while it runs a job: the lease runs out, another
worker runs the job again, and the job completes exactly once."""

from __future__ import annotations

import signal
import time

import pytest

from tests.chaos.conftest import Chaos
from tests.chaos.harness import WORKER_STARTED, enqueue, gone, side_effects, until

LEASE = {"JOBWIRE_LEASE_SECONDS": "2"}


@pytest.mark.slow
@pytest.mark.parametrize("target", ["process group", "worker process alone"])
def test_a_job_whose_worker_is_killed_mid_run_is_run_again_by_another_worker_and_completes_once(
    chaos: Chaos, target: str
) -> None:
    first = chaos.procs.worker("worker-1", **LEASE)
    first_id = first.wait_for(WORKER_STARTED).group(1)
    [job_id] = enqueue(chaos.url, "crunch", [{"seconds": 2.0}])

    until(
        lambda: any(e.type == "output" for e in chaos.ledger.events(job_id)),
        20,
        "the job to say it has started",
    )
    [started] = side_effects(chaos.effects)
    tree = [p.pid for p in first.descendants()]
    assert started.pid in tree, "the job runs in a job process of the first worker"

    killed_at = time.monotonic()
    if target == "process group":
        first.kill_group()
    else:
        first.signal(signal.SIGKILL)  # its job processes must notice and exit on their own
    assert first.wait(10) == -signal.SIGKILL
    until(lambda: all(gone(pid) for pid in tree), 10, "the killed worker's job processes to exit")
    orphans_gone_after = time.monotonic() - killed_at

    second = chaos.procs.worker("worker-2", **LEASE)
    second_id = second.wait_for(WORKER_STARTED).group(1)
    until(
        lambda: sum(e.type == "started" for e in chaos.ledger.events(job_id)) == 2,
        20,
        "the job to start again",
    )
    restarted_after = time.monotonic() - killed_at
    row = until(
        lambda: (r := chaos.ledger.job(job_id)) is not None and r.state == "succeeded" and r,
        20,
        "the job to succeed",
    )
    print(
        f"\n[{target}] job processes gone {orphans_gone_after:.2f} s after kill -9; "
        f"job running again after {restarted_after:.2f} s; "
        f"done after {time.monotonic() - killed_at:.2f} s"
    )

    assert (row.attempts, row.crashes) == (1, 1), "the lost run is not charged to retries"
    assert row.result == "crunched"
    events = chaos.ledger.events(job_id)
    types = [e.type for e in events]
    assert types.count("succeeded") == 1, types
    starts = [e.data for e in events if e.type == "started"]
    assert [(s["attempt"], s["worker"]) for s in starts] == [(1, first_id), (1, second_id)]
    [lost] = [e.data for e in events if e.type == "queued" and e.data.get("lost")]
    assert lost["error"]["type"] == "LeaseExpired" and lost["worker"] == first_id
    assert "retrying" not in types

    effects = side_effects(chaos.effects)
    assert [(e.what, e.attempt) for e in effects] == [("start", 1), ("start", 1), ("end", 1)]
    assert effects[1].pid in {p.pid for p in second.descendants()}

    second_tree = [p.pid for p in second.descendants()]
    second.signal(signal.SIGTERM)
    assert second.wait(15) == 0
    until(lambda: all(gone(pid) for pid in second_tree), 10, "its job processes to exit")
