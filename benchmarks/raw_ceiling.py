"""The raw ceiling: plain ``sqlite3`` doing the writes a job's life needs, batched.

Per job, with jobwire's own schema: insert the job row and its ``queued`` event; claim
(update to running + ``started`` event); finish (update to succeeded + ``succeeded``
event). 100 jobs per transaction, WAL, ``synchronous=NORMAL``. No Python job model, no
threads, no wake-ups: the most this machine's SQLite can do through Python.

    python -m benchmarks.raw_ceiling [--jobs 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

from benchmarks._common import fresh_db, median
from jobwire.ids import new_job_id
from jobwire.store.queries import load

SQL = load("sqlite.sql")

INSERT = """INSERT INTO jobs (id, job, queue, state, owner, priority, args, attempts, max_attempts,
    created_at, scheduled_at, last_seq, options)
    VALUES (?, 'noop', 'default', 'queued', 'anonymous', 0, '{}', 0, 1, ?, ?, 1, '{}')"""
CLAIM = """UPDATE jobs SET state = 'running', attempts = 1, started_at = ?, lease_expires_at = ?,
    claim_token = ?, worker_id = 'w', last_seq = 2 WHERE id = ?"""
FINISH = """UPDATE jobs SET state = 'succeeded', finished_at = ?, claim_token = NULL,
    lease_expires_at = NULL, last_seq = 3 WHERE id = ? AND claim_token = ?"""
EVENT = "INSERT INTO events (job_id, seq, type, data, at) VALUES (?, ?, ?, ?, ?)"


def measure(count: int, synchronous: str = "NORMAL", batch: int = 100) -> float:
    path = Path(fresh_db().removeprefix("sqlite:///"))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.executescript(SQL["schema"])
    ids = [new_job_id() for _ in range(count)]  # the time-ordered ids jobwire stores
    start = time.perf_counter()
    for lo in range(0, count, batch):
        chunk = ids[lo : lo + batch]
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        for job_id in chunk:
            conn.execute(INSERT, (job_id, now, now))
            conn.execute(EVENT, (job_id, 1, "queued", "{}", now))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        for job_id in chunk:
            conn.execute(CLAIM, (now, now + 30, "t" + job_id, job_id))
            conn.execute(EVENT, (job_id, 2, "started", '{"attempt":1}', now))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        for job_id in chunk:
            conn.execute(FINISH, (now, job_id, "t" + job_id))
            conn.execute(EVENT, (job_id, 3, "succeeded", '{"result":null}', now))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates = [measure(args.jobs) for _ in range(args.runs)]
    print(
        f"raw sqlite3 job lifecycles/s, 100 per transaction, NORMAL: median {median(rates):,.0f} "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
    )


if __name__ == "__main__":
    main()
