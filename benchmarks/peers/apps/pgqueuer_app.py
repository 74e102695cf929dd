"""pgqueuer: ``pgq run benchmarks.peers.apps.pgqueuer_app:main``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

from benchmarks.peers.apps._stamp import stamp as _stamp


@asynccontextmanager
async def main() -> AsyncIterator[PgQueuer]:
    conn = await asyncpg.connect(os.environ["BENCH_URL"])
    pgq = PgQueuer(AsyncpgDriver(conn))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        return None

    @pgq.entrypoint("stamp")
    async def stamp(job: Job) -> None:
        _stamp(int(job.payload or b"0"))

    try:
        yield pgq
    finally:
        await conn.close()


async def prefill(count: int) -> None:
    conn = await asyncpg.connect(os.environ["BENCH_URL"])
    try:
        queries = Queries(AsyncpgDriver(conn))
        for start in range(0, count, 1000):
            n = min(1000, count - start)
            await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    finally:
        await conn.close()


class Client:
    async def __aenter__(self) -> Client:
        self.conn = await asyncpg.connect(os.environ["BENCH_URL"])
        self.queries = Queries(AsyncpgDriver(self.conn))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()

    async def submit(self, port: int) -> int:
        (job_id,) = await self.queries.enqueue("stamp", str(port).encode())
        return int(job_id)

    async def wait(self, job_id: int) -> None:
        # pgqueuer has no result API: a finished job has left the queue table.
        query = "SELECT count(*) FROM pgqueuer WHERE id = $1"
        while await self.conn.fetchval(query, job_id):  # noqa: ASYNC110 (nothing to await)
            await asyncio.sleep(0.001)
