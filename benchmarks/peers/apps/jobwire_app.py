"""jobwire: ``jobwire worker benchmarks.peers.apps.jobwire_app:jobs`` (``JOBWIRE_URL``)."""

from __future__ import annotations

from benchmarks.noop_app import jobs, stamp
from jobwire.ids import new_job_id
from jobwire.store.base import NewJob

__all__ = ["jobs"]


async def prefill(count: int) -> None:
    async with jobs:
        for start in range(0, count, 1000):
            n = min(1000, count - start)
            await jobs.store.enqueue(
                [NewJob(id=new_job_id(), job="noop", args={}) for _ in range(n)]
            )


class Client:
    async def __aenter__(self) -> Client:
        await jobs.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await jobs.__aexit__(None, None, None)

    async def submit(self, port: int) -> object:
        return await stamp.enqueue(port=port)

    async def wait(self, handle: object) -> None:
        await handle.result(timeout=30)  # type: ignore[attr-defined]
