"""RQ: ``rq worker --url $BENCH_URL`` (it forks a work horse per job, by default)."""

from __future__ import annotations

import os
import time

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
        while job.get_status(refresh=True) != "finished":
            time.sleep(0.001)
