"""(d) HTTP submit requests/s: ``POST /jobs`` against a bare FastAPI endpoint, same run.

One uvicorn process serves both routes (embedded workers off, so only submission is
measured); ``wrk`` (``apt-get install wrk``) keeps 16 requests in flight for a fixed
time against each route in turn. The figure that matters is the ratio: what durable
submission costs over an endpoint that persists nothing.

    python -m benchmarks.http_submit [--seconds 5] [--runs 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import httpx

from benchmarks._common import ROOT, fresh_db, median

BODY = {"job": "noop", "args": {}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"job": "noop", "args": {}}'
wrk.headers["Content-Type"] = "application/json"
"""


def hammer(base: str, path: str, seconds: float, concurrency: int) -> float:
    """Requests/s from wrk (a C load generator: the client is not the bottleneck)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "-s", script.name, base + path],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"{path}: some requests failed:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return float(match.group(1))


def wait_ready(base: str) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(base + "/jobs/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "JOBWIRE_URL": fresh_db(),
        "JOBWIRE_EMBEDDED_WORKERS": "0",
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "benchmarks.http_app:app",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_ready(base)
        hammer(base, "/jobs", 1, args.concurrency)  # warm-up
        bare_rates, submit_rates = [], []
        for run in range(args.runs):
            bare = hammer(base, "/bare", args.seconds, args.concurrency)
            submit = hammer(base, "/jobs", args.seconds, args.concurrency)
            bare_rates.append(bare)
            submit_rates.append(submit)
            print(
                f"run {run + 1}: bare {bare:,.0f}/s, POST /jobs {submit:,.0f}/s, "
                f"ratio {submit / bare:.2f}"
            )
        ratios = [s / b for s, b in zip(submit_rates, bare_rates, strict=True)]
        print(
            f"median of {args.runs}: bare {median(bare_rates):,.0f}/s, "
            f"POST /jobs {median(submit_rates):,.0f}/s, ratio {median(ratios):.2f}"
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
