"""The stores every contract test runs against.

To run the suite on another engine, add one entry to ``STORES``: a name and a factory
that builds an unopened store keeping its data under the given (empty, per-test)
directory. A factory may call ``pytest.skip`` when its engine is not available here;
better, name a check in ``AVAILABLE`` that skips (or fails) before the test starts, so
that no test is left holding what it made before the factory ran (the state machine
opens an event loop first).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from jobwire.store.base import Store
from jobwire.store.memory import MemoryStore
from jobwire.store.sqlite import SQLiteStore

StoreFactory = Callable[[Path], Store]


def _memory(directory: Path) -> Store:
    return MemoryStore()


def _sqlite(directory: Path) -> Store:
    return SQLiteStore(directory / "jobwire.db")


def _postgresql(directory: Path) -> Store:
    """A schema of its own on the test server, dropped when the store closes."""
    from tests.postgres.server import scratch_store

    store: Store = scratch_store()
    return store


def _redis(directory: Path) -> Store:
    from tests.redis.server import new_store  # a key prefix of its own

    return new_store()


def _redis_available() -> None:
    from tests.redis.server import require_redis

    require_redis()


STORES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgresql": _postgresql,
    "redis": _redis,
}

AVAILABLE: dict[str, Callable[[], None]] = {
    "redis": _redis_available,
}


@pytest.fixture(params=list(STORES))
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    """The factory of one store engine; the test runs once per engine."""
    factory: StoreFactory = STORES[request.param]
    check = AVAILABLE.get(request.param)
    if check is not None:
        check()  # skips, or fails when JOBWIRE_REQUIRE_SERVICES=1
    return factory


@pytest.fixture
async def store(store_factory: StoreFactory, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh, open store of each engine."""
    opened = store_factory(tmp_path)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
