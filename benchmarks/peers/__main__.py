"""jobwire against Procrastinate and pgqueuer on PostgreSQL, and against Celery, arq and
RQ on Redis: drain throughput and submit→start latency with 1, 2 and 4 worker processes,
all in one invocation so that the ratios compare figures taken minutes apart.

    python -m benchmarks.peers [--runs 3] [--more-runs 1] [--workers 1,2,4]
                               [--engines postgresql,redis] [--systems jobwire,celery,…]
                               [--latency-only]

The peers are installed by the script itself into ``benchmarks/peers/.venv/<peer>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from benchmarks._common import median, percentile
from benchmarks.peers import envs
from benchmarks.peers.systems import SYSTEMS, System, check_redis_dbs_free, stop

DRAIN_POLL = 0.02  # the harness samples the finished count; it does not pace the workers


@dataclass
class Figures:
    drains: list[float] = field(default_factory=list)
    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "drain": median(self.drains),
            "p50": median(self.p50s),
            "p99": median(self.p99s),
        }


def _log_file(path: Path) -> IO[bytes]:
    return path.open("ab")


async def drain(system: System, workers: int, jobs: int, logs: Path) -> float:
    await system.reset()
    system.driver("prefill", str(jobs))
    count, close = await system.counter(jobs)
    with _log_file(logs / f"{system.name}-drain-{workers}.log") as log:
        procs = [system.start_worker(i, log) for i in range(workers)]
        try:
            deadline = time.monotonic() + 600
            first_at = first_done = None
            while time.monotonic() < deadline:
                if all(p.poll() is not None for p in procs):
                    raise RuntimeError(f"{system.label}: its workers exited; see {log.name}")
                done = await count()
                now = time.monotonic()
                if done and first_at is None:
                    first_at, first_done = now, done
                if done >= jobs:
                    break
                await asyncio.sleep(DRAIN_POLL)
            else:
                raise RuntimeError(f"{system.label}: {done} of {jobs} finished in 600 s")
        finally:
            stop(procs)
            await close()
    assert first_at is not None and first_done is not None
    if now == first_at:  # finished between two samples: no interval to divide by
        return float("nan")
    return (jobs - first_done) / (now - first_at)


async def latency(system: System, workers: int, jobs: int, logs: Path) -> tuple[float, float]:
    await system.reset()
    warmup = 5 if system.latency_jobs else 20
    with _log_file(logs / f"{system.name}-latency-{workers}.log") as log:
        procs = [system.start_worker(i, log) for i in range(workers)]
        try:
            done = system.driver("latency", str(jobs), str(warmup))
        finally:
            stop(procs)
    starts = json.loads(done.stdout.strip().splitlines()[-1])
    return percentile(starts, 50), percentile(starts, 99)


async def measure(args: argparse.Namespace) -> dict[str, dict[str, dict[str, float]]]:
    chosen = [
        s
        for s in SYSTEMS
        if s.engine in args.engines and (not args.systems or s.name in args.systems)
    ]
    for system in {s.name for s in chosen} - {"jobwire"}:
        envs.ensure(system)
    if any(s.engine == "redis" for s in chosen):
        await check_redis_dbs_free()
    logs = Path(tempfile.mkdtemp(prefix="jobwire-bench-peers-"))
    print(f"worker logs: {logs}", flush=True)
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for workers in args.workers:
            runs = args.runs if workers == 1 else args.more_runs
            figures = {s.label: Figures() for s in chosen}
            # Runs interleave the systems, so that a busy minute hurts them all alike.
            for run in range(runs):
                for system in chosen:
                    n = min(args.jobs, system.drain_jobs or args.jobs)
                    rate = (
                        float("nan") if args.latency_only else await drain(system, workers, n, logs)
                    )
                    m = min(args.latency_jobs, system.latency_jobs or args.latency_jobs)
                    p50, p99 = await latency(system, workers, m, logs)
                    fig = figures[system.label]
                    fig.drains.append(rate)
                    fig.p50s.append(p50)
                    fig.p99s.append(p99)
                    print(
                        f"{workers} worker(s), run {run + 1}, {system.label}: drain "
                        f"{rate:,.0f} jobs/s ({n:,} jobs); submit→start p50 {p50:.2f} "
                        f"p99 {p99:.2f} ms ({m} jobs)",
                        flush=True,
                    )
            results[str(workers)] = {label: f.summary() for label, f in figures.items()}
            report(chosen, workers, runs, results[str(workers)])
    finally:
        for system in chosen:
            await system.drop()
    return results


def report(
    chosen: list[System], workers: int, runs: int, summary: dict[str, dict[str, float]]
) -> None:
    print(f"\n{workers} worker process(es), medians of {runs} run(s):")
    print(
        "| system | drain jobs/s | submit→start p50 ms | p99 ms "
        "| jobwire drain ÷ peer | peer p50 ÷ jobwire p50 |"
    )
    print("|---|---|---|---|---|---|")
    for system in chosen:
        own = summary[system.label]
        ours = (
            next(
                summary[s.label]
                for s in chosen
                if s.name == "jobwire" and s.engine == system.engine
            )
            if any(s.name == "jobwire" and s.engine == system.engine for s in chosen)
            else None
        )
        ratios = "— | —"
        if ours is not None and system.name != "jobwire":
            ratios = f"{ours['drain'] / own['drain']:.2f}x | {own['p50'] / ours['p50']:.2f}x"
        print(
            f"| {system.label} | {own['drain']:,.0f} | {own['p50']:.2f} "
            f"| {own['p99']:.2f} | {ratios} |"
        )
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs with one worker process")
    parser.add_argument(
        "--more-runs", type=int, default=None, help="runs with 2 and 4 (default: --runs)"
    )
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--jobs", type=int, default=20_000, help="drained per run")
    parser.add_argument("--latency-jobs", type=int, default=500)
    parser.add_argument("--engines", default="postgresql,redis")
    parser.add_argument("--systems", default="", help="comma-separated names; default all")
    parser.add_argument(
        "--latency-only", action="store_true", help="skip the drain (submit→start only)"
    )
    parser.add_argument("--json", type=Path, help="also write the medians here")
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    args.engines = args.engines.split(",")
    args.systems = [s for s in args.systems.split(",") if s]
    if args.more_runs is None:
        args.more_runs = args.runs
    # A stopped run still drops its databases and flushes its Redis DBs (measure's finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = asyncio.run(measure(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
