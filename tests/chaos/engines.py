"""The stores the chaos tests crash workers against, and how each is read back and cut.

- :class:`StoreLedger` reads jobs and events of a PostgreSQL or Redis store through the
  store's own contract (``get``, ``list``, ``events``, ``feed``), on an event loop of its
  own in a thread, so the synchronous tests read while the workers write. It answers
  the same questions as the SQLite :class:`~tests.chaos.harness.Ledger`.
- :class:`Engine` is one store: its URL, its ledger, and :meth:`Engine.cut_wake_ups`,
  which kills the connections a given worker process hears wake-ups on —
  ``pg_terminate_backend`` of its ``LISTEN`` connection, ``CLIENT KILL`` of its pub/sub
  connection and of its worker's doorbell connection (blocked in ``BLPOP``) — found by
  the local ports of that process's own sockets, so another store's listener on the
  same server (another test, another session) is never touched.

PostgreSQL stores live in a schema of their own, Redis stores under a key prefix of
their own (``tests/postgres/server.py``, ``tests/redis/server.py``).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import psutil

from jobwire.feed.results import resolve_results
from jobwire.model import State
from jobwire.store import store_from_url
from jobwire.store.base import ListQuery, Store
from tests.chaos.harness import Ev, Ledger, Row

ENGINES = ("sqlite", "postgres", "redis")
SERVER_ENGINES = ("postgres", "redis")
T = TypeVar("T")
_PAGE = 1000
_UNFINISHED = (State.QUEUED, State.RUNNING)


class StoreLedger:
    """Jobs and their event logs, read through an open store of the engine."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="chaos-ledger", daemon=True
        )
        self._thread.start()
        self.store: Store = store_from_url(url)
        self._run(self.store.open())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def close(self) -> None:
        try:
            self._run(self.store.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    async def _listed(self, states: tuple[State, ...] = ()) -> list[Row]:
        rows: list[Row] = []
        before = None
        while True:
            page = await self.store.list(ListQuery(states=states, before_id=before, limit=_PAGE))
            rows.extend(
                Row(j.id, j.job, j.state.value, j.attempts, j.max_attempts, j.error, j.result,
                    j.worker_id, j.crashes)
                for j in page.items
            )  # fmt: skip
            if page.next_cursor is None:
                return rows
            before = page.next_cursor

    async def _events(self, job_id: str | None) -> list[Ev]:
        events = []
        after = 0
        while True:
            if job_id is None:
                page = await self.store.feed(after, limit=_PAGE)
            else:
                page = await self.store.events(job_id, after, limit=_PAGE)
            page = await resolve_results(self.store, page)  # results as channels show them
            events.extend(Ev(e.job_id, e.seq, e.type.value, e.data, e.at) for e in page)
            if len(page) < _PAGE:
                return sorted(events, key=lambda e: (e.job_id, e.seq))
            after = page[-1].cursor if job_id is None else page[-1].seq

    def feed(self, after: int) -> tuple[list[Ev], int]:
        """Every event after cursor ``after`` in cursor order, and the cursor to go on from."""

        async def read() -> tuple[list[Ev], int]:
            events, cursor = [], after
            while True:
                page = await resolve_results(self.store, await self.store.feed(cursor, limit=_PAGE))
                events.extend(Ev(e.job_id, e.seq, e.type.value, e.data, e.at) for e in page)
                if page:
                    cursor = page[-1].cursor
                if len(page) < _PAGE:
                    return events, cursor

        return self._run(read())

    def jobs(self) -> dict[str, Row]:
        return {row.id: row for row in self._run(self._listed())}

    def job(self, job_id: str) -> Row | None:
        job = self._run(self.store.get(job_id))
        if job is None:
            return None
        return Row(job.id, job.job, job.state.value, job.attempts, job.max_attempts, job.error,
                   job.result, job.worker_id, job.crashes)  # fmt: skip

    def events(self, job_id: str | None = None) -> list[Ev]:
        return self._run(self._events(job_id))

    def count(self, event_type: str) -> Counter[str]:
        return Counter(e.job_id for e in self.events() if e.type == event_type)

    def unfinished(self) -> int:
        return len(self._run(self._listed(_UNFINISHED)))

    def states(self) -> Counter[str]:
        return Counter(r.state for r in self.jobs().values())


class Engine:
    """One store for a test: where it is, how to read it, how to cut a worker's wake-ups."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name = name
        self._schema: str | None = None
        self.db: Path | None = None
        if name == "sqlite":
            self.db = tmp_path / "jobwire.db"
            self.url = f"sqlite:///{self.db}"
        elif name == "postgres":
            from tests.postgres.server import new_schema, url_with_schema

            self._schema = new_schema()
            self.url = url_with_schema(self._schema)  # skips (or fails) without a server
        elif name == "redis":
            from tests.redis.server import URL, new_prefix

            self.url = f"{URL}?prefix={new_prefix()}"  # skips (or fails) without a server
        else:
            raise ValueError(f"unknown engine {name!r}; expected one of {ENGINES}")
        self._ledger: Ledger | StoreLedger | None = None

    @property
    def ledger(self) -> Ledger | StoreLedger:
        """Opened on first use: a server's store is read once the workers have made it."""
        if self._ledger is None:
            self._ledger = Ledger(self.db) if self.db is not None else StoreLedger(self.url)
        return self._ledger

    def close(self) -> None:
        if isinstance(self._ledger, StoreLedger):
            self._ledger.close()
        if self._schema is not None:
            from tests.postgres.server import drop_schema

            asyncio.run(drop_schema(self._schema))
        # Redis keys go with the session's prefix when the test process exits.

    # -- wake-up connections -----------------------------------------------------------

    @property
    def wake_up_connections(self) -> int:
        """How many connections :meth:`cut_wake_ups` kills in a worker process that has
        them all: PostgreSQL's ``LISTEN``; Redis's pub/sub and the worker's doorbell."""
        return 2 if self.name == "redis" else 1

    def cut_wake_ups(self, pid: int) -> int:
        """Kill the connections process ``pid`` hears wake-ups on; how many were killed
        (fewer while some are reconnecting)."""
        if self.name == "postgres":
            return asyncio.run(self._terminate_listen(pid))
        if self.name == "redis":
            return self._kill_subscriber(pid)
        raise ValueError(f"{self.name} has no wake-up connection to cut")

    async def _terminate_listen(self, pid: int) -> int:
        import asyncpg

        from tests.postgres.server import server_url

        ports = _local_ports(pid, 5432)
        conn = await asyncpg.connect(server_url())
        try:
            killed = await conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'jobwire-listen' AND client_port = ANY($1::int[])",
                sorted(ports),
            )
        finally:
            await conn.close()
        return int(killed)

    def _kill_subscriber(self, pid: int) -> int:
        import redis

        from tests.redis.server import URL

        ports = _local_ports(pid, 6379)
        killed = 0
        with redis.Redis.from_url(URL) as admin:
            for client in admin.client_list():
                port = int(str(client["addr"]).rsplit(":", 1)[1])
                listens = "P" in str(client["flags"])  # a pub/sub subscriber
                rings = str(client["name"]).startswith("jobwire-doorbell-")
                if port in ports and (listens or rings):
                    killed += int(admin.client_kill_filter(_id=client["id"]))
        return killed


def _local_ports(pid: int, server_port: int) -> set[int]:
    """The local ports of the TCP connections process ``pid`` holds to ``server_port``."""
    return {
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == server_port
    }
