"""The PostgreSQL server the tests use, and stores in schemas of their own.

The server is found at ``JOBWIRE_TEST_POSTGRES_URL`` or, failing that, at
``postgresql://{postgres,root}@127.0.0.1:5432/test``. When none answers, tests that need
it are skipped with the reason, or fail when ``JOBWIRE_REQUIRE_SERVICES=1`` (as in CI).
Each store lives in a schema of its own, empty when the store opens.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


def _required() -> bool:
    return os.environ.get("JOBWIRE_REQUIRE_SERVICES", "") == "1"


async def _probe(url: str) -> str | None:
    """None when a connection to ``url`` works, else why not."""
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed (pip install 'jobwire[postgres]')"
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    return None


@functools.cache
def _find_server() -> tuple[str | None, str]:
    given = os.environ.get("JOBWIRE_TEST_POSTGRES_URL")
    candidates = (given,) if given else CANDIDATES
    reasons = []
    # A fresh loop in a thread of its own: this may be called from inside a running loop.
    with ThreadPoolExecutor(1) as pool:
        for url in candidates:
            reason = pool.submit(asyncio.run, _probe(url)).result()
            if reason is None:
                return url, ""
            reasons.append(f"{url}: {reason}")
    return None, "; ".join(reasons)


def server_url() -> str:
    """The server's URL; skips the test (or fails it, when services are required)."""
    url, reason = _find_server()
    if url is None:
        message = f"PostgreSQL is not reachable ({reason})"
        if _required():
            pytest.fail(message + " and JOBWIRE_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(message)
    return url


def new_schema() -> str:
    return f"jobwire_test_{secrets.token_hex(6)}"


def url_with_schema(schema: str) -> str:
    return f"{server_url()}?schema={schema}"


async def drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


# Schemas already migrated by a closed scratch store, emptied: the next one reuses them,
# which spares the contract suite (hundreds of stores) a migration each. Dropped at exit.
_SPARE: list[str] = []
_MADE: set[str] = set()

EMPTY_TABLES = (
    "DELETE FROM {s}.jobwire_events; DELETE FROM {s}.jobwire_deliveries; "
    "DELETE FROM {s}.jobwire_idempotency; DELETE FROM {s}.jobwire_jobs; "
    "DELETE FROM {s}.jobwire_stats; DELETE FROM {s}.jobwire_workers; "
    "DELETE FROM {s}.jobwire_stats_pending; DELETE FROM {s}.jobwire_job_names; "
    "DELETE FROM {s}.jobwire_schedules; DELETE FROM {s}.jobwire_workflows;"
    "DELETE FROM {s}.jobwire_rate_starts; DELETE FROM {s}.jobwire_permits;"
)


def scratch_store(**options: Any) -> Any:
    """A PostgresStore in a schema of its own, emptied when it closes (for the contract
    suite, whose factories have no teardown of their own)."""
    from jobwire.store.postgres import PostgresStore

    class ScratchStore(PostgresStore):
        async def close(self) -> None:
            pool = self._pool
            if pool is not None:
                await pool.execute(EMPTY_TABLES.format(s=f'"{self.schema}"'))
            await super().close()
            if pool is not None:
                _SPARE.append(self.schema)

    url = server_url()  # skips (or fails) here when no server answers
    schema = _SPARE.pop() if _SPARE else new_schema()
    if schema not in _MADE:
        if not _MADE:
            atexit.register(_drop_made)
        _MADE.add(schema)
    # One connection: the contract runs hundreds of stores, and each connection costs a
    # connect and a preparation of every statement; tests/postgres covers concurrency.
    options.setdefault("max_size", 1)
    # Durability is not what the contract checks: commits need not wait for the disk.
    options.setdefault("server_settings", {"synchronous_commit": "off"})
    return ScratchStore(url, schema=schema, **options)


def _drop_made() -> None:
    async def drop_all() -> None:
        for schema in _MADE:
            await drop_schema(schema)

    asyncio.run(drop_all())  # at exit no event loop runs any more
