"""(b) Drain: 20,000 no-op async jobs pre-filled, one standalone worker process.

Rate = jobs / (last finished_at - first finished_at), read from the store, so start-up
of the worker is not counted ("from the first finished job until every result is
visible", as the peers were measured).

    python -m benchmarks.drain [--jobs 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import time

from benchmarks._common import fresh_db, median, start_worker


async def prefill(url: str, count: int) -> None:
    os.environ["JOBWIRE_URL"] = url
    from jobwire import Jobwire
    from jobwire.ids import new_job_id
    from jobwire.store.base import NewJob

    jobs = Jobwire(url)
    async with jobs:
        batch = 1000
        for start in range(0, count, batch):
            await jobs.store.enqueue(
                [
                    NewJob(id=new_job_id(), job="noop", args={})
                    for _ in range(min(batch, count - start))
                ]
            )


def measure(url: str, count: int) -> float:
    path = url.removeprefix("sqlite:///")
    asyncio.run(prefill(url, count))
    worker = start_worker(url)
    try:
        conn = sqlite3.connect(path)
        deadline = time.time() + 300
        while time.time() < deadline:
            done = conn.execute("SELECT count(*) FROM jobs WHERE state = 'succeeded'").fetchone()[0]
            if done >= count:
                break
            time.sleep(0.05)  # the harness samples; it does not synchronise the system
        first, last = conn.execute(
            "SELECT min(finished_at), max(finished_at) FROM jobs WHERE state = 'succeeded'"
        ).fetchone()
        return count / (last - first)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates = []
    for run in range(args.runs):
        rate = measure(fresh_db(), args.jobs)
        rates.append(rate)
        print(f"run {run + 1}: {rate:,.0f} jobs/s")
    print(
        f"drain median of {args.runs}: {median(rates):,.0f} jobs/s "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
    )


if __name__ == "__main__":
    main()
