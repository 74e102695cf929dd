"""Stores over the test PostgreSQL server, each test in a schema of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from jobwire.store.postgres import PostgresStore
from tests.postgres.server import drop_schema, new_schema, server_url


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    """A schema name no other test uses; dropped with everything in it afterwards."""
    server_url()  # skips (or fails) here when no server answers
    name = new_schema()
    yield name
    await drop_schema(name)


@pytest.fixture
def pg_url(schema: str) -> str:
    """A store URL for this test's schema."""
    return f"{server_url()}?schema={schema}"


def open_store(pg_url: str, **options: Any) -> PostgresStore:
    return PostgresStore.from_url(pg_url, **options)


@pytest.fixture
async def first(pg_url: str) -> AsyncIterator[PostgresStore]:
    """A store: one process of the application."""
    store = open_store(pg_url)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def second(pg_url: str, first: PostgresStore) -> AsyncIterator[PostgresStore]:
    """Another store on the same schema: another process (a worker elsewhere, say)."""
    store = open_store(pg_url)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def app_conn(schema: str, first: PostgresStore) -> AsyncIterator[asyncpg.Connection[Any]]:
    """The application's own connection, with an ``orders`` table of its own."""
    conn: asyncpg.Connection[Any] = await asyncpg.connect(server_url())
    await conn.execute(f'CREATE TABLE "{schema}".orders (id integer PRIMARY KEY)')
    yield conn
    await conn.close()
