"""arq: ``arq benchmarks.peers.apps.arq_app.WorkerSettings``."""

from __future__ import annotations

import os
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job

from benchmarks.peers.apps._stamp import stamp as _stamp

REDIS = RedisSettings.from_dsn(os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/0"))


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def stamp(ctx: dict[str, Any], port: int) -> None:
    _stamp(port)


class WorkerSettings:
    functions = [noop, stamp]
    redis_settings = REDIS


async def prefill(count: int) -> None:
    pool = await create_pool(REDIS)
    try:
        for _ in range(count):
            await pool.enqueue_job("noop")
    finally:
        await pool.aclose()


class Client:
    async def __aenter__(self) -> Client:
        self.pool = await create_pool(REDIS)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pool.aclose()

    async def submit(self, port: int) -> Job:
        job = await self.pool.enqueue_job("stamp", port)
        assert job is not None
        return job

    async def wait(self, job: Job) -> None:
        await job.result(timeout=30, poll_delay=0.001)
