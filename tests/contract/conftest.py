"""The stores every contract test runs against.

To run the suite on another engine, add one entry to ``STORES``: a name and a factory
that builds an unopened store keeping its data under the given (empty, per-test)
directory. A factory may call ``pytest.skip`` when its engine is not available here.
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


STORES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
}


@pytest.fixture(params=list(STORES))
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    """The factory of one store engine; the test runs once per engine."""
    factory: StoreFactory = STORES[request.param]
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
