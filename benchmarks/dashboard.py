"""Dashboard reads with a million finished jobs: the overview and the jobs list, over HTTP.

Fills a fresh store (SQLite file, or a schema of its own on PostgreSQL) with ``--jobs``
finished jobs spread over the last week (85 % succeeded, 10 % failed, 5 % cancelled;
four queues, five job names, three owners), written straight into the tables in bulk —
rows exactly as the store writes them, and the state counters recounted once, as the
schema migration does — then serves the app with uvicorn in a process of its own and times
``--requests`` GETs of each dashboard read with one client. The jobs carry no event
rows: none of these reads looks at events.

    .venv/bin/python -m benchmarks.dashboard --store sqlite
    .venv/bin/python -m benchmarks.dashboard --store postgresql

How the reads stay cheap: counts per queue and state come from counters kept in the
transactions that change jobs (``Store.counts()``), never from counting jobs; the last
hour is read along the ``finished_at`` index, at most 20,000 jobs; the oldest queued job
per queue along the partial index of queued jobs; a list page along the primary key (ids
are time-ordered) or the ``(owner, id)`` index, stopping after one page.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks._common import free_port, fresh_db, percentile, start_server, wait_live
from jobwire import Jobwire
from jobwire.ids import new_job_id

QUEUES = ("default", "cpu", "io", "mail")
NAMES = ("crunch", "crawl", "resize", "notify", "report")
OWNERS = ("alice", "bob", "carol")
WEEK = 7 * 24 * 3600.0
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
COLUMNS = (
    "id, job, queue, state, owner, priority, args, attempts, max_attempts, timeout, "
    "created_at, scheduled_at, started_at, finished_at, progress, result, error, "
    "lease_expires_at, claim_token, worker_id, cancel_requested, last_seq, "
    "idempotency_key, options"
)


def rows(count: int, now: float, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """Finished jobs, oldest first, created evenly over the week before ``now``."""
    rng = random.Random(seed)
    start = now - WEEK
    step = WEEK / count
    error = json.dumps({"type": "ValueError", "message": "bad input", "traceback": "..."})
    for i in range(count):
        created = start + i * step
        roll = rng.random()
        state = "succeeded" if roll < 0.85 else "failed" if roll < 0.95 else "cancelled"
        started = created + rng.random() * 0.05
        finished = started + rng.random() * 2.0
        yield (
            new_job_id(int(created * 1000)),
            NAMES[i % len(NAMES)],
            QUEUES[i % len(QUEUES)],
            state,
            OWNERS[i % len(OWNERS)],
            0,
            json.dumps({"n": i}),
            1,
            1,
            None,
            created,
            created,
            started,
            finished,
            None,
            json.dumps(i) if state == "succeeded" else None,
            error if state == "failed" else None,
            None,
            None,
            None,
            state == "cancelled",
            3,
            None,
            "{}",
        )


def fill_sqlite(path: Path, count: int, now: float) -> None:
    conn = sqlite3.connect(path)
    marks = ", ".join("?" * 24)
    batch: list[tuple[Any, ...]] = []
    for row in rows(count, now):
        batch.append((*row[:20], int(row[20]), *row[21:]))
        if len(batch) == 50_000:
            with conn:
                conn.executemany(f"INSERT INTO jobs ({COLUMNS}) VALUES ({marks})", batch)
            batch.clear()
    with conn:
        conn.executemany(f"INSERT INTO jobs ({COLUMNS}) VALUES ({marks})", batch)
        conn.execute("DELETE FROM job_stats WHERE key LIKE 'state:%'")
        conn.execute(
            "INSERT INTO job_stats (queue, job, key, value) "
            "SELECT queue, job, 'state:' || state, count(*) FROM jobs GROUP BY queue, job, state"
        )
    conn.execute("ANALYZE")
    conn.close()


async def fill_postgres(dsn: str, schema: str, count: int, now: float) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        table = f'"{schema}".jobwire_jobs'
        names = [c.strip() for c in COLUMNS.split(",")]
        batch: list[tuple[Any, ...]] = []
        for row in rows(count, now):
            batch.append(row)
            if len(batch) == 50_000:
                await conn.copy_records_to_table(
                    "jobwire_jobs", schema_name=schema, records=batch, columns=names
                )
                batch.clear()
        await conn.copy_records_to_table(
            "jobwire_jobs", schema_name=schema, records=batch, columns=names
        )
        await conn.execute(f"DELETE FROM \"{schema}\".jobwire_stats WHERE key LIKE 'state:%'")
        await conn.execute(
            f'INSERT INTO "{schema}".jobwire_stats (queue, job, key, shard, value) '
            f"SELECT queue, job, 'state:' || state, 0, count(*) FROM {table} "
            "GROUP BY queue, job, state"
        )
        await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()


async def drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def measure(url: str, requests: int) -> dict[str, dict[str, float]]:
    ui = "/jobs/ui/api"
    with httpx.Client(base_url=url, timeout=60) as client:
        middle = client.get(f"{ui}/jobs", params={"owner": "bob", "limit": 200}).json()
        routes = {
            "liveness (baseline)": ("/jobs/health/live", {}),
            "overview": (f"{ui}/overview", {}),
            "jobs: newest page": (f"{ui}/jobs", {}),
            "jobs: failed": (f"{ui}/jobs", {"state": "failed"}),
            "jobs: queue + name": (f"{ui}/jobs", {"queue": "cpu", "job": "crawl"}),
            "jobs: one owner, next page": (
                f"{ui}/jobs",
                {"owner": "bob", "cursor": middle["next_cursor"]},
            ),
            "jobs: a day, a week ago": (
                f"{ui}/jobs",
                {"until": time.time() - 6 * 86400},
            ),
        }
        figures: dict[str, dict[str, float]] = {}
        for name, (path, params) in routes.items():
            assert client.get(path, params=params).status_code == 200  # warm
            took = []
            for _ in range(requests):
                began = time.perf_counter()
                answer = client.get(path, params=params)
                took.append((time.perf_counter() - began) * 1000)
                assert answer.status_code == 200, answer.text
            figures[name] = {
                "p50": percentile(took, 50),
                "p95": percentile(took, 95),
                "max": max(took),
            }
        overview = client.get(f"{ui}/overview").json()
        total = sum(sum(by_state.values()) for by_state in overview["counts"].values())
        figures["_check"] = {
            "jobs counted": total,
            "last hour": overview["activity"]["overall"]["succeeded"],
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    now = time.time()
    schema = ""
    if args.store == "sqlite":
        url = fresh_db("dashboard.db")
    else:
        schema = "jobwire_bench_" + secrets.token_hex(4)
        url = f"{PG_URL}?schema={schema}"
    # No pruner (retention 0): the oldest jobs are older than the default retention.
    jobs = Jobwire(url, embedded_workers=False, dashboard_open=True, retention_seconds=0)
    try:
        asyncio.run(_open_close(jobs))
        began = time.perf_counter()
        if args.store == "sqlite":
            fill_sqlite(Path(url.removeprefix("sqlite:///")), args.jobs, now)
        else:
            asyncio.run(fill_postgres(PG_URL, schema, args.jobs, now))
        print(f"filled {args.jobs:,} finished jobs in {time.perf_counter() - began:.0f} s")
        port = free_port()
        server = start_server(url, port, dashboard_open="1", retention_seconds="0")
        try:
            wait_live(f"http://127.0.0.1:{port}")
            figures = measure(f"http://127.0.0.1:{port}", args.requests)
        finally:
            server.terminate()
            server.wait(30)
        check = figures.pop("_check")
        print(
            f"{args.store}: {check['jobs counted']:,.0f} jobs counted by the overview, "
            f"{check['last hour']:,.0f} succeeded in the last hour"
        )
        print(f"{'read':<30}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
        for name, f in figures.items():
            print(f"{name:<30}{f['p50']:>10.1f}{f['p95']:>10.1f}{f['max']:>10.1f}")
        worst = max(f["p95"] for f in figures.values())
        print(f"worst p95: {worst:.1f} ms (target < 200 ms): {'met' if worst < 200 else 'NOT met'}")
    finally:
        if schema:
            asyncio.run(drop_schema(PG_URL, schema))
        else:
            shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)


async def _open_close(jobs: Jobwire) -> None:
    """Create the schema through the store itself."""
    await jobs.store.open()
    await jobs.store.close()


if __name__ == "__main__":
    main()
