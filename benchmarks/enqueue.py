"""(a) Enqueue throughput from Python: one client, one ``await job.enqueue()`` at a time.

python -m benchmarks.enqueue [--jobs 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from benchmarks._common import fresh_db, median


async def measure(count: int) -> float:
    os.environ["JOBWIRE_URL"] = fresh_db()
    from jobwire import Jobwire

    jobs = Jobwire(embedded_workers=False)

    @jobs.job
    async def noop() -> None:
        return None

    async with jobs:
        for _ in range(100):  # warm-up
            await noop.enqueue()
        start = time.perf_counter()
        for _ in range(count):
            await noop.enqueue()
        return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates = []
    for run in range(args.runs):
        rate = asyncio.run(measure(args.jobs))
        rates.append(rate)
        print(f"run {run + 1}: {rate:,.0f} enqueues/s")
    print(
        f"enqueue median of {args.runs}: {median(rates):,.0f}/s "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
    )


if __name__ == "__main__":
    main()
