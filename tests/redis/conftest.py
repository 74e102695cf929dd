"""Redis stores for the Redis-only tests: each test gets a key prefix of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from jobwire.store.redis import RedisStore
from tests.redis import server

StoreOpener = Callable[..., RedisStore]


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix (skips, or fails under JOBWIRE_REQUIRE_SERVICES=1, without Redis)."""
    return server.new_prefix()


@pytest.fixture
def redis_url(prefix: str) -> str:
    """A store URL for this test's prefix, as ``JOBWIRE_URL`` would give it."""
    return f"{server.URL}?prefix={prefix}"


@pytest.fixture
async def open_store(prefix: str) -> AsyncIterator[StoreOpener]:
    """``await open_store()``: another open store over this test's data (closed after)."""
    opened: list[RedisStore] = []

    async def open_one(**options: float) -> RedisStore:
        store = server.new_store(prefix, **options)
        await store.open()
        opened.append(store)
        return store

    yield open_one  # type: ignore[misc]
    for store in opened:
        await store.close()
