"""(c) submit→start and submit→result latency, 500 sequential jobs, each awaited.

*start* is the job's first statement: its own clock stamp sent back over loopback UDP.
*result* is when ``await handle.result()`` returns in the submitting process. Measured
with embedded workers (the worker runs in the submitting process, as in a FastAPI app)
and with a standalone worker process (the wake-up crosses processes).

    python -m benchmarks.latency [--jobs 500] [--runs 3] [--mode embedded|standalone|both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import time

from benchmarks._common import fresh_db, median, percentile, start_worker


async def run_jobs(count: int, standalone: bool) -> tuple[list[float], list[float]]:
    url = fresh_db()
    os.environ["JOBWIRE_URL"] = url
    from benchmarks.noop_app import jobs, stamp

    jobs.settings = jobs.settings.with_(url=url)
    jobs._store = None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    loop = asyncio.get_running_loop()
    worker = None
    starts: list[float] = []
    results: list[float] = []
    async with jobs:
        if standalone:
            worker = start_worker(url)
        else:
            await jobs.start_worker()
        try:
            for i in range(count + 50):  # the first 50 warm up
                t0 = time.time()
                handle = await stamp.enqueue(port=port)
                packet = await loop.sock_recv(sock, 256)
                await handle.result(timeout=30)
                t_result = time.time()
                _, _, stamped = packet.decode().partition(" ")
                if i >= 50:
                    starts.append((float(stamped) - t0) * 1000)
                    results.append((t_result - t0) * 1000)
        finally:
            if worker is not None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(30)
            elif jobs.worker is not None:
                await jobs.worker.drain()
    sock.close()
    return starts, results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=["embedded", "standalone", "both"], default="both")
    args = parser.parse_args()
    modes = ["embedded", "standalone"] if args.mode == "both" else [args.mode]
    for mode in modes:
        rows = []
        for run in range(args.runs):
            starts, results = asyncio.run(run_jobs(args.jobs, mode == "standalone"))
            row = (
                percentile(starts, 50),
                percentile(starts, 99),
                percentile(results, 50),
                percentile(results, 99),
            )
            rows.append(row)
            print(
                f"{mode} run {run + 1}: submit→start p50 {row[0]:.2f} p99 {row[1]:.2f} ms; "
                f"submit→result p50 {row[2]:.2f} p99 {row[3]:.2f} ms"
            )
        med = [median([r[i] for r in rows]) for i in range(4)]
        print(
            f"{mode} median of {args.runs}: submit→start p50 {med[0]:.2f} / p99 {med[1]:.2f} ms; "
            f"submit→result p50 {med[2]:.2f} / p99 {med[3]:.2f} ms"
        )


if __name__ == "__main__":
    main()
