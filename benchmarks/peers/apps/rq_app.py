"""RQ: ``rq worker --url $BENCH_URL`` (it forks a work horse per job, by default)."""

from __future__ import annotations

import asyncio
import os

from redis import Redis
from rq import Queue
from rq.job import Job

from benchmarks.peers.apps._stamp import stamp as _stamp


def noop() -> None:
    return None


def stamp(port: int) -> None:
    _stamp(port)


def _queue() -> Queue:
    return Queue(connection=Redis.from_url(os.environ["BENCH_URL"]))


def prefill(count: int) -> None:
    queue = _queue()
    for _ in range(count):
        queue.enqueue(noop)


class Client:
    async def __aenter__(self) -> Client:
        self.queue = _queue()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def submit(self, port: int) -> Job:
        return self.queue.enqueue(stamp, port)

    async def wait(self, job: Job) -> None:
        # RQ's own wait is a poll of the job's status too.
        while job.get_status(refresh=True) != "finished":  # noqa: ASYNC110
            await asyncio.sleep(0.001)
