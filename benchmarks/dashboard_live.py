"""One open dashboard while jobs flow: what it receives and what it costs the server.

A server (uvicorn, its own process, no embedded workers, the dashboard open) and a
standalone worker share a fresh SQLite file; this process enqueues no-op jobs at
``--rate`` per second (batches every 0.1 s) for two phases of ``--seconds`` each:
first with nobody watching, then with one dashboard client that does what the overview
page does — follows ``P/ui/api/events`` and re-reads the overview at most once a second
when batches arrive. It reports the batches and events the client got per second and
the server process's CPU time in each phase; the difference is the dashboard's cost.

    .venv/bin/python -m benchmarks.dashboard_live --rate 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from pathlib import Path

import httpx
import psutil
from httpx_sse import aconnect_sse

from benchmarks._common import free_port, fresh_db, start_server, start_worker, wait_live
from jobwire import Jobwire
from jobwire.ids import new_job_id
from jobwire.store.base import NewJob


async def produce(jobs: Jobwire, rate: int, seconds: float) -> int:
    """Enqueue ``rate`` jobs a second, a tenth of them every 0.1 s."""
    per_tick = max(1, rate // 10)
    made = 0
    began = time.monotonic()
    tick = 0
    while time.monotonic() - began < seconds:
        batch = [NewJob(id=new_job_id(), job="noop", args={}) for _ in range(per_tick)]
        await jobs.store.enqueue(batch)
        made += len(batch)
        tick += 1
        await asyncio.sleep(max(0.0, began + tick * 0.1 - time.monotonic()))
    return made


async def watch(base: str, stop: asyncio.Event, seen: dict[str, float]) -> None:
    """The overview page: the stream, and a re-read at most once a second."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        last_read = 0.0
        async with aconnect_sse(client, "GET", "/jobs/ui/api/events") as source:
            async for message in source.aiter_sse():
                if message.event != "batch":
                    continue
                seen["batches"] += 1
                seen["events"] += len(json.loads(message.data))
                if time.monotonic() - last_read >= 1.0:
                    last_read = time.monotonic()
                    assert (await client.get("/jobs/ui/api/overview")).status_code == 200
                    seen["overview reads"] += 1
                if stop.is_set():
                    return


async def phase(
    jobs: Jobwire, server: psutil.Process, base: str, rate: int, seconds: float, watched: bool
) -> dict[str, float]:
    seen = {"batches": 0.0, "events": 0.0, "overview reads": 0.0}
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(base, stop, seen)) if watched else None
    await asyncio.sleep(0.5)
    cpu = server.cpu_times()
    began = time.monotonic()
    made = await produce(jobs, rate, seconds)
    took = time.monotonic() - began
    after = server.cpu_times()
    stop.set()
    if watcher is not None:
        try:
            await asyncio.wait_for(watcher, 10)
        except TimeoutError:
            watcher.cancel()
    used = (after.user - cpu.user) + (after.system - cpu.system)
    return {
        "enqueued/s": made / took,
        "server CPU %": 100 * used / took,
        "batches/s": seen["batches"] / took,
        "events/s": seen["events"] / took,
        "overview reads/s": seen["overview reads"] / took,
    }


async def run(rate: int, seconds: float) -> None:
    url = fresh_db("live.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    jobs = Jobwire(url, embedded_workers=False)
    await jobs.store.open()
    server = start_server(url, port, dashboard_open="1", retention_seconds="0")
    worker = start_worker(url)
    try:
        await asyncio.to_thread(wait_live, base)
        proc = psutil.Process(server.pid)
        quiet = await phase(jobs, proc, base, rate, seconds, watched=False)
        watched = await phase(jobs, proc, base, rate, seconds, watched=True)
        print(f"{'':<20}{'nobody watching':>18}{'one dashboard':>16}")
        for key in quiet:
            print(f"{key:<20}{quiet[key]:>18.1f}{watched[key]:>16.1f}")
        extra = watched["server CPU %"] - quiet["server CPU %"]
        print(f"the dashboard's server cost: {extra:+.1f} % of one core")
    finally:
        for proc_ in (server, worker):
            proc_.terminate()
            proc_.wait(30)
        await jobs.store.close()
        shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds))


if __name__ == "__main__":
    main()
