"""Instructions per drained job: the CLI worker under ``valgrind --tool=callgrind``.

Wall-clock rates on a shared machine swing with whatever else runs; the number of
instructions a worker executes per job does not. The worker drains a small and a large
pre-filled queue of no-op jobs, each in a process of its own under callgrind; the
difference of the two totals divided by the difference of the job counts leaves out
start-up and shut-down.

    python -m benchmarks.drain_instructions [--small 1000] [--large 4000] [--keep DIR]

Needs ``valgrind`` (``apt-get install valgrind``); the worker runs about 50 times slower
under it, so a run takes a minute or two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import ROOT
from benchmarks.drain import prefill


def instructions(count: int, keep: Path | None) -> int:
    """Every instruction the worker process executed while draining ``count`` jobs."""
    directory = Path(tempfile.mkdtemp(prefix="jobwire-callgrind-"))
    url = f"sqlite:///{directory / 'bench.db'}"
    asyncio.run(prefill(url, count))
    out = (keep or directory) / f"callgrind.{count}.out"
    log = directory / "valgrind.log"
    env = {**os.environ, "JOBWIRE_URL": url, "PYTHONPATH": str(ROOT)}
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        f"--log-file={log}",
        sys.executable,
        "-m",
        "jobwire",
        "worker",
        "benchmarks.noop_app:jobs",
    ]
    worker = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        conn = sqlite3.connect(directory / "bench.db")
        while (
            conn.execute("SELECT count(*) FROM jobs WHERE state = 'succeeded'").fetchone()[0]
            < count
        ):
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited early; see {log}")
            time.sleep(0.5)  # the harness samples; it does not synchronise the system
        conn.close()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(600)
    totals = re.findall(r"Collected : (\d+)", log.read_text())
    if not totals:
        raise RuntimeError(f"no callgrind totals in {log}")
    if keep is None:
        shutil.rmtree(directory, ignore_errors=True)
    return sum(int(total) for total in totals)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=4000)
    parser.add_argument("--keep", type=Path, help="keep the callgrind files in this directory")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    small = instructions(args.small, args.keep)
    large = instructions(args.large, args.keep)
    per_job = (large - small) / (args.large - args.small)
    print(
        f"{per_job:,.0f} instructions per drained job ({small:,} for {args.small}, "
        f"{large:,} for {args.large})"
    )


if __name__ == "__main__":
    main()
