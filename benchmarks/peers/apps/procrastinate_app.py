"""Procrastinate: ``procrastinate --app=benchmarks.peers.apps.procrastinate_app.app worker``."""

from __future__ import annotations

import asyncio
import os

from procrastinate import App, PsycopgConnector

from benchmarks.peers.apps._stamp import stamp as _stamp

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_URL", "")))


@app.task(name="noop")
async def noop() -> None:
    return None


@app.task(name="stamp")
async def stamp(port: int) -> None:
    _stamp(port)


async def prefill(count: int) -> None:
    async with app.open_async():
        for start in range(0, count, 1000):
            await noop.batch_defer_async(*({} for _ in range(min(1000, count - start))))


class Client:
    async def __aenter__(self) -> Client:
        await app.open_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await app.close_async()

    async def submit(self, port: int) -> int:
        return await stamp.defer_async(port=port)

    async def wait(self, job_id: int) -> None:
        # Procrastinate has no result API: poll the job's status, as a caller would.
        status = app.job_manager.get_job_status_async
        while str(await status(job_id)) != "Status.SUCCEEDED":  # noqa: ASYNC110
            await asyncio.sleep(0.001)
