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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(url: str, port: int, **settings: str) -> subprocess.Popen[bytes]:
    """``benchmarks.http_app`` (the jobs router at /jobs) in a uvicorn process of its own,
    without embedded workers, with these ``JOBWIRE_*`` settings (lower-case names)."""
    env = {**os.environ, "JOBWIRE_URL": url, "JOBWIRE_EMBEDDED_WORKERS": "0"}
    env.update({f"JOBWIRE_{k.upper()}": v for k, v in settings.items()})
    env["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "uvicorn", "benchmarks.http_app:app", "--port", str(port)]
    argv += ["--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(argv, env=env, cwd=ROOT)


def wait_live(base: str, within: float = 30.0) -> None:
    import time

    import httpx

    deadline = time.monotonic() + within
    with httpx.Client(base_url=base) as client:
        while True:
            try:
                if client.get("/jobs/health/live").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{base} did not start within {within} s")
            time.sleep(0.1)


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
