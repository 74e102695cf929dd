"""A host cut off the network mid-job: its lease runs out, another host runs the job,
and when the host is back every late write it makes (heartbeat, progress, result) is
refused by fencing: the second attempt's result stands.

Two worker hosts, each in a network namespace of its own, reach a private store engine
over a bridge. The test cuts host a off while the job runs there and lets its attempt
end, so its last progress and its result wait on the dead link; it brings host a back
while host b runs the job, then lets host b finish.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from jobwire import Event, EventType, Jobwire
from jobwire.feed.results import resolve_results
from tests.chaos.harness import WORKER_STARTED, Proc
from tests.hosts.app import hop, jobs
from tests.hosts.conftest import Cluster
from tests.support.waiting import first_event, until

# Heartbeats every 4/3 s: a cut-off host's lease runs out within 4 s of the cut.
LEASE_SECONDS = 4.0


async def started(worker: Proc) -> str:
    """The worker's id, once it says it has started."""
    found = await asyncio.to_thread(worker.wait_for, WORKER_STARTED, 30)
    return found.group(1)


def progress_from(events: list[Event]) -> set[object]:
    return {e.data["message"] for e in events if e.type is EventType.PROGRESS}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["unplugged", "partitioned"])
async def test_a_host_cut_off_mid_job_loses_it_to_another_host_and_its_late_writes_are_refused(
    cluster: Cluster, how: str
) -> None:
    cluster.settings.update(
        {"JOBWIRE_LEASE_SECONDS": str(LEASE_SECONDS), "JOBWIRE_POLL_SECONDS": "1"}
    )
    host_a, host_b = cluster.network.hosts["a"], cluster.network.hosts["b"]
    worker_a = cluster.worker(host_a)
    id_a = await started(worker_a)

    async with jobs.using(cluster.url, embedded_workers=False) as client:
        handle = await client.enqueue(hop, {"every": 0.2})
        job_id = handle.id
        beat = await first_event(client, job_id, lambda e: e.type is EventType.PROGRESS)
        assert beat.data["message"] == "a", "host a runs the job first"
        worker_b = cluster.worker(host_b)
        id_b = await started(worker_b)

        cluster.network.cut(host_a, how)
        # Host a's job ends now: its last progress and its result wait on the cut link.
        cluster.release(host_a)
        await until(
            lambda: ("a", job_id, 1) in cluster.ends(),
            within=10,
            what="host a to finish its attempt while cut off",
        )
        # Host a's lease runs out; host b's reaper hands the job back and b runs it.
        beat = await first_event(
            client,
            job_id,
            lambda e: e.type is EventType.STARTED and e.data["worker"] == id_b,
            within=30,
        )
        assert beat.data["attempt"] == 1, "the run lost with host a is not charged"
        await first_event(
            client, job_id, lambda e: e.type is EventType.PROGRESS and e.data["message"] == "b"
        )
        running = await client.store.events(job_id)
        # Host a knew, by its own clock, that its lease had run out.
        await asyncio.to_thread(
            worker_a.wait_for, rf"job {job_id}: lease lost: no heartbeat answered", 10
        )

        # Host a comes back while host b runs the job: its late writes arrive now.
        cluster.network.restore(host_a)
        await asyncio.to_thread(worker_a.wait_for, r"late write refused", 60)
        since = (await client.store.events(job_id))[len(running) :]
        assert all(e.type is EventType.PROGRESS for e in since), since
        assert progress_from(since) <= {"b"}, "no late write of host a was accepted"
        now = await client.get(job_id)
        assert (now.state.value, now.attempts, now.crashes, now.worker_id) == (
            "running",
            1,
            1,
            id_b,
        )

        cluster.release(host_b)
        result = await handle.result(timeout=30)
        assert result == {"host": "b", "attempt": 1}
        job = await client.get(job_id)
        await check_log(client, job_id, id_a, id_b)
    # A host cut off is not the job's fault: the run on host b is attempt 1 again.
    assert (job.state.value, job.attempts, job.crashes) == ("succeeded", 1, 1)
    assert job.result == {"host": "b", "attempt": 1}
    assert sorted(cluster.ends()) == [("a", job_id, 1), ("b", job_id, 1)]

    # Both hosts are healthy again and stop cleanly.
    for worker in (worker_a, worker_b):
        assert worker.alive(), worker.output_tail()
        worker.signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0, worker.output_tail()


async def check_log(client: Jobwire, job_id: str, id_a: str, id_b: str) -> None:
    """Host a until its lease ran out, then host b only, each as attempt 1 (uncharged)."""
    events = await client.store.events(job_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    starts = [(e.data["attempt"], e.data["worker"]) for e in events if e.type is EventType.STARTED]
    assert starts == [(1, id_a), (1, id_b)]
    [reclaim] = [
        i for i, e in enumerate(events) if e.type is EventType.QUEUED and e.data.get("lost")
    ]
    assert events[reclaim].data["error"]["type"] == "LeaseExpired"
    assert progress_from(events[:reclaim]) == {"a"}
    assert progress_from(events[reclaim + 1 :]) == {"b"}, "nothing from host a after the reclaim"
    [succeeded] = [e for e in events if e.type is EventType.SUCCEEDED]
    assert succeeded == events[-1]
    [shown] = await resolve_results(client.store, [succeeded])
    assert shown.data["result"] == {"host": "b", "attempt": 1} and shown.data["attempt"] == 1
