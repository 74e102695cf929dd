"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fresh_db(name: str = "bench.db") -> str:
    directory = Path(tempfile.mkdtemp(prefix="jobwire-bench-"))
    return f"sqlite:///{directory / name}"


def start_worker(url: str, *extra_env: tuple[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "JOBWIRE_URL": url, "PYTHONPATH": str(ROOT)}
    env.update(dict(extra_env))
    # Started with the project's own CLI, at its defaults, as the peers were.
    command = [sys.executable, "-m", "jobwire", "worker", "benchmarks.noop_app:jobs"]
    return subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
