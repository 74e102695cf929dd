"""Fan-out: N concurrent SSE followers of running jobs on one server process.

    python -m benchmarks.fanout.run [--followers 1000 5000] [--jobs 10] [--events 20]
                                    [--interval 1.0] [--clients 4] [--out results.json]
                                    [--python VENV/bin/python] [--server-gc default|untuned|off]

For each N: starts ``uvicorn benchmarks.fanout.app:app`` over a fresh SQLite file,
submits ``--jobs`` ticker jobs (held at a gate), spreads N followers evenly over them
from ``--clients`` follower processes (raw asyncio HTTP/1.1, see client.py), opens the
gate once every follower has its job's ``started`` event, and lets each job publish
``--events`` outputs, one every ``--interval`` seconds (jobs staggered across the
interval). Reports delivery latency (receive time minus the event's ``at``, the store's
commit clock) at p50/p99/max, whether every follower got every event exactly once in
order, the p99 of each output in turn (a pause shows up as a spike), and the server's
RSS: before the followers, with them connected, and at peak.

Targets (README): 5,000 followers, p99 under 250 ms, RSS under 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks._common import percentile

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    return hard


class Sampler(threading.Thread):
    """The server's peak RSS, and its CPU time every 0.1 s (to split the round)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self.cpu: list[tuple[float, float]] = []  # (wall clock, CPU seconds)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.cpu.append((time.time(), sum(self.process.cpu_times()[:2])))

    def cpu_between(self, start: float, end: float) -> float:
        inside = [cpu for at, cpu in self.cpu if start <= at <= end]
        return inside[-1] - inside[0] if len(inside) > 1 else float("nan")


def start_server(
    directory: Path,
    followers: int,
    args: argparse.Namespace,
    profile: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_")},
        "PYTHONPATH": os.pathsep.join([*([str(args.src)] if args.src else []), str(ROOT)]),
        "JOBWIRE_URL": f"sqlite:///{directory / 'fanout.db'}",
        "JOBWIRE_MAX_STREAMS_PER_OWNER": str(followers + 100),
        "FANOUT_SERVER_GC": args.server_gc,
        # "untuned": the collector as CPython sets it, without jobwire's server tuning.
        "JOBWIRE_GC_TUNING": "false" if args.server_gc == "untuned" else "true",
    }
    argv = [
        args.python,
        "-m",
        "uvicorn",
        "benchmarks.fanout.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backlog",
        "4096",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if profile is not None:
        argv = [args.python, "-m", "benchmarks.fanout.profiled", str(port), str(profile)]
    log = open(directory / "server.log", "wb")  # noqa: SIM115 - handed to the server
    server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the server has its own copy
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/jobs/health/live").status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start; see {directory / 'server.log'}")
        time.sleep(0.1)


def server_stack(python: str) -> str:
    """What uvicorn will pick in that interpreter: httptools and uvloop when installed."""
    code = (
        "import importlib.util as u;"
        "print(('httptools' if u.find_spec('httptools') else 'h11') + '+' +"
        " ('uvloop' if u.find_spec('uvloop') else 'asyncio'))"
    )
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def run_round(followers: int, args: argparse.Namespace) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="jobwire-fanout-"))
    gate = directory / "gate"
    profile = args.profile.with_suffix(f".{followers}.prof") if args.profile else None
    server, url = start_server(directory, followers, args, profile)
    clients: list[subprocess.Popen[str]] = []
    try:
        process = psutil.Process(server.pid)
        with httpx.Client(base_url=url, timeout=30) as http:
            job_ids = []
            for k in range(args.jobs):
                body = {
                    "job": "ticker",
                    "args": {
                        "events": args.events,
                        "interval": args.interval,
                        "gate": str(gate),
                        "offset": k * args.interval / args.jobs,
                        "linger": 2 * args.interval + 1,
                    },
                }
                job_ids.append(http.post("/jobs", json=body).json()["id"])
            while any(http.get(f"/jobs/{j}").json()["state"] != "running" for j in job_ids):
                time.sleep(0.05)
        rss_idle = process.memory_info().rss

        t0 = time.monotonic()
        share = followers // args.clients
        host, port = url.removeprefix("http://").split(":")
        for c in range(args.clients):
            n = share if c < args.clients - 1 else followers - share * (args.clients - 1)
            rotated = job_ids[c % len(job_ids) :] + job_ids[: c % len(job_ids)]
            clients.append(
                subprocess.Popen(
                    [
                        args.python,
                        "-m",
                        "benchmarks.fanout.client",
                        host,
                        port,
                        ",".join(rotated),
                        "--followers",
                        str(n),
                    ],
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for client in clients:
            assert client.stdout is not None
            line = client.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a follower process failed to connect: {line!r}")
        connect_seconds = time.monotonic() - t0
        rss_connected = process.memory_info().rss
        cpu_before = sum(process.cpu_times()[:2])

        if profile is not None:
            server.send_signal(signal.SIGUSR1)
        sampler = Sampler(server.pid)
        sampler.start()
        t1 = time.monotonic()
        gate_at = time.time()
        gate.touch()
        results = []
        client_cpu = 0.0
        for client in clients:
            out, _ = client.communicate(timeout=args.events * args.interval + 300)
            results.append(json.loads(out))
            client_cpu += results[-1]["cpu_s"]
        run_seconds = time.monotonic() - t1
        sampler.done.set()
        sampler.join()
        cpu_seconds = sum(process.cpu_times()[:2]) - cpu_before
        if profile is not None:
            server.send_signal(signal.SIGUSR2)
            deadline = time.monotonic() + 30
            while not profile.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.wait()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    latencies = [x for r in results for x in r["latencies_ms"]]
    last_output_at = max(r["last_output_at"] for r in results)
    delivery_cpu = sampler.cpu_between(gate_at, last_output_at)
    per_output = [
        round(percentile([f[i] for r in results for f in r["by_output"] if len(f) > i], 99))
        for i in range(args.events)
    ]
    expected = followers * args.events
    return {
        "followers": followers,
        "jobs": args.jobs,
        "events_per_job": args.events,
        "interval_s": args.interval,
        "deliveries": len(latencies),
        "expected_deliveries": expected,
        "incomplete_followers": sum(r["incomplete_count"] for r in results),
        "incomplete_examples": [x for r in results for x in r["incomplete"]][:5],
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "p99_ms_by_output": per_output,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "connect_s": round(connect_seconds, 1),
        "run_s": round(run_seconds, 1),
        "server_cpu_s": round(cpu_seconds, 1),
        "server_cpu_us_per_delivery": round(cpu_seconds / max(1, len(latencies)) * 1e6),
        "server_cpu_s_outputs": round(delivery_cpu, 1),
        "server_cpu_us_per_delivery_outputs": round(delivery_cpu / max(1, len(latencies)) * 1e6),
        "clients_cpu_s": round(client_cpu, 1),
        "rss_idle_mib": round(rss_idle / 2**20),
        "rss_connected_mib": round(rss_connected / 2**20),
        "rss_peak_mib": round(sampler.peak / 2**20),
        "loadavg_1m": os.getloadavg()[0],
        "server_stack": server_stack(args.python),
        "server_gc": args.server_gc,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--followers", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=4, help="follower processes")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    parser.add_argument("--profile", type=Path, help="cProfile the server into PATH.<N>.prof")
    parser.add_argument(
        "--src",
        type=Path,
        help="import the server's jobwire from this directory (another checkout's src/)",
    )
    parser.add_argument(
        "--server-gc",
        choices=["default", "off", "untuned"],
        default="default",
        help="'default': jobwire's tuning (JOBWIRE_GC_TUNING); 'untuned': CPython's "
        "own thresholds; 'off': no cyclic GC at all, a diagnostic of the latency tail",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter of the server and the follower processes: e.g. a venv with "
        "uvicorn[standard] (httptools, uvloop)",
    )
    args = parser.parse_args()
    limit = raise_fd_limit()
    if limit < max(args.followers) + 1000:
        sys.exit(f"the fd limit ({limit}) is too low for {max(args.followers)} followers")
    print(
        f"cpus={os.cpu_count()} fd-limit={limit} jobs={args.jobs} events/job={args.events} "
        f"interval={args.interval}s clients={args.clients} server={server_stack(args.python)} "
        f"server-gc={args.server_gc}"
    )
    rounds = []
    for followers in args.followers:
        result = run_round(followers, args)
        rounds.append(result)
        ok = (
            "all delivered"
            if result["incomplete_followers"] == 0
            else (f"{result['incomplete_followers']} followers incomplete")
        )
        print(
            f"{followers:>6} followers: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"max {result['max_ms']} ms; {result['deliveries']}/{result['expected_deliveries']} "
            f"deliveries, {ok}; RSS {result['rss_idle_mib']} -> {result['rss_connected_mib']} "
            f"-> peak {result['rss_peak_mib']} MiB; server CPU {result['server_cpu_s']} s "
            f"({result['server_cpu_us_per_delivery']} us/delivery; "
            f"{result['server_cpu_us_per_delivery_outputs']} us while outputs flowed), "
            f"clients' CPU "
            f"{result['clients_cpu_s']} s, over {result['run_s']} s; connect "
            f"{result['connect_s']} s; load {result['loadavg_1m']:.1f}",
            flush=True,
        )
        print(f"        p99 of each output in turn (ms): {result['p99_ms_by_output']}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(rounds, indent=2) + "\n")


if __name__ == "__main__":
    main()
