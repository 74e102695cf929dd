"""The systems compared, each on an isolated database or Redis DB number of the shared
servers: how to make it empty, start its workers with its own command-line tool, and
count its finished jobs from the harness."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg
import redis.asyncio as aioredis

from benchmarks.peers import envs

ROOT = Path(__file__).resolve().parent.parent.parent
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")

# Redis DB numbers of their own, checked empty before the first run, flushed after.
REDIS_DBS = {"jobwire": 10, "celery": 11, "celery-results": 12, "arq": 13, "rq": 14}


def pg_url(system: str) -> str:
    base, _, _ = PG_ADMIN.rpartition("/")
    return f"{base}/jobwire_bench_{system}"


def redis_url(db: str) -> str:
    return f"{REDIS}/{REDIS_DBS[db]}"


@dataclass(frozen=True)
class System:
    name: str
    engine: str  # "postgresql" or "redis"
    label: str
    drain_jobs: int | None = None  # cap for the slowest peers, so a run takes a minute
    latency_jobs: int | None = None

    @property
    def python(self) -> Path:
        return Path(sys.executable) if self.name == "jobwire" else envs.python(self.name)

    def bin(self, tool: str) -> str:
        return str(self.python.parent / tool)

    @property
    def url(self) -> str:
        if self.engine == "postgresql":
            return pg_url(self.name)
        if self.name == "jobwire":
            return redis_url("jobwire") + "?prefix=bench:"
        return redis_url(self.name)

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_URL": self.url}
        env.pop("VIRTUAL_ENV", None)
        if self.name == "jobwire":
            env["JOBWIRE_URL"] = self.url
        if self.name == "celery":
            env["BENCH_RESULT_URL"] = redis_url("celery-results")
        if self.name == "pgqueuer":
            env["PGDSN"] = self.url
        return env

    def worker_command(self, index: int) -> list[str]:
        """The peer's own CLI at its defaults."""
        module = "benchmarks.peers.apps"
        return {
            "jobwire": [self.bin("jobwire"), "worker", f"{module}.jobwire_app:jobs"],
            "procrastinate": [
                self.bin("procrastinate"),
                f"--app={module}.procrastinate_app.app",
                "worker",
            ],
            "pgqueuer": [self.bin("pgq"), "run", f"{module}.pgqueuer_app:main"],
            "celery": [
                self.bin("celery"),
                "-A",
                f"{module}.celery_app",
                "worker",
                "-n",
                f"bench{index}@%h",
            ],
            "arq": [self.bin("arq"), f"{module}.arq_app.WorkerSettings"],
            "rq": [self.bin("rq"), "worker", "--url", self.url],
        }[self.name]

    def start_worker(self, index: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.worker_command(index),
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so that stopping it reaches its children too
        )

    def driver(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-m", "benchmarks.peers.driver", self.name, *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )

    async def reset(self) -> None:
        """Make the system's database or Redis DBs empty, with its schema installed."""
        if self.engine == "postgresql":
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                name = f"jobwire_bench_{self.name}"
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            if self.name == "procrastinate":
                self._run_tool(
                    [
                        self.bin("procrastinate"),
                        "--app=benchmarks.peers.apps.procrastinate_app.app",
                        "schema",
                        "--apply",
                    ]
                )
            elif self.name == "pgqueuer":
                # "durable" is its default, named because typer 0.15 cannot print that default.
                self._run_tool([self.bin("pgq"), "install", "--durability", "durable"])
            # jobwire migrates its schema itself when the store opens.
        else:
            for db in self._redis_dbs():
                client = aioredis.from_url(redis_url(db))
                await client.flushdb()
                await client.aclose()

    async def drop(self) -> None:
        if self.engine == "postgresql":
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(
                    f'DROP DATABASE IF EXISTS "jobwire_bench_{self.name}" WITH (FORCE)'
                )
            finally:
                await admin.close()
        else:
            for db in self._redis_dbs():
                client = aioredis.from_url(redis_url(db))
                await client.flushdb()
                await client.aclose()

    def _redis_dbs(self) -> list[str]:
        return ["celery", "celery-results"] if self.name == "celery" else [self.name]

    def _run_tool(self, command: list[str]) -> None:
        subprocess.run(command, env=self.env, cwd=ROOT, check=True, capture_output=True)

    async def counter(
        self, enqueued: int
    ) -> tuple[Callable[[], Awaitable[int]], Callable[[], Awaitable[None]]]:
        """A function that counts the system's finished jobs, read from its own storage,
        and one that closes the connection it uses."""
        if self.engine == "postgresql":
            conn = await asyncpg.connect(self.url)
            query = {
                "jobwire": "SELECT count(*) FROM jobwire_jobs WHERE state = 'succeeded'",
                "procrastinate": (
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
                ),
                # pgqueuer deletes a finished job from its queue table.
                "pgqueuer": f"SELECT {enqueued} - count(*) FROM pgqueuer",
            }[self.name]

            async def count_pg() -> int:
                return int(await conn.fetchval(query))

            return count_pg, conn.close
        db = "celery-results" if self.name == "celery" else self.name
        client = aioredis.from_url(redis_url(db))

        async def count_redis() -> int:
            if self.name == "jobwire":
                return int(await client.zcard("bench:finished"))
            if self.name == "celery":
                return int(await client.dbsize())  # one result key per finished task
            if self.name == "arq":
                # arq takes a job off its queue in the transaction that stores its result.
                return enqueued - int(await client.zcard("arq:queue"))
            return int(await client.zcard("rq:finished:default"))

        return count_redis, client.aclose


SYSTEMS = [
    System("jobwire", "postgresql", "jobwire (PostgreSQL)"),
    System("procrastinate", "postgresql", "Procrastinate 3.10", drain_jobs=2_000),
    System("pgqueuer", "postgresql", "pgqueuer 1.6"),
    System("jobwire", "redis", "jobwire (Redis)"),
    System("celery", "redis", "Celery 5.7"),
    System("arq", "redis", "arq 0.28", drain_jobs=3_000, latency_jobs=60),
    System("rq", "redis", "RQ 3.0", drain_jobs=1_000, latency_jobs=200),
]


async def check_redis_dbs_free() -> None:
    """Refuse to run over somebody else's data in the Redis DB numbers we flush."""
    for db in REDIS_DBS:
        client = aioredis.from_url(redis_url(db))
        size = await client.dbsize()
        await client.aclose()
        if size:
            raise SystemExit(
                f"Redis DB {REDIS_DBS[db]} holds {size} keys; the benchmark flushes it, "
                "so it only runs when that DB is empty (FLUSHDB it if the keys are a "
                "previous benchmark's)"
            )


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
