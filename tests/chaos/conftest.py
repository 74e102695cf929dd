"""Fixtures of the chaos tests: a fresh store (SQLite unless the test asks for another
engine, ``@pytest.mark.parametrize("chaos", ENGINES, indirect=True)``), a side-effect
file, and a registry of started processes that teardown kills, so no test leaves a
process behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chaos.effects import SIDE_EFFECTS_ENV
from tests.chaos.engines import Engine, StoreLedger
from tests.chaos.harness import Ledger, Procs


@dataclass
class Chaos:
    engine: Engine
    url: str
    effects: Path
    procs: Procs

    @property
    def db(self) -> Path:
        assert self.engine.db is not None, "only the SQLite engine has a database file"
        return self.engine.db

    @property
    def ledger(self) -> Ledger | StoreLedger:
        return self.engine.ledger


@pytest.fixture
def chaos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chaos]:
    engine = Engine(getattr(request, "param", "sqlite"), tmp_path)
    effects = tmp_path / "side-effects.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("JOBWIRE_")}
    env.update(
        {
            "JOBWIRE_URL": engine.url,
            "JOBWIRE_PROCESS_CONCURRENCY": "1",
            "JOBWIRE_POLL_SECONDS": "1",
            SIDE_EFFECTS_ENV: str(effects),
            "PYTHONUNBUFFERED": "1",
        }
    )
    procs = Procs(env)
    try:
        yield Chaos(engine, engine.url, effects, procs)
    finally:
        procs.cleanup()
        engine.close()
