"""Fixtures of the chaos tests: a fresh SQLite file, a side-effect file, and a registry
of started processes that teardown kills, so no test leaves a process behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chaos.app import SIDE_EFFECTS_ENV
from tests.chaos.harness import Ledger, Procs


@dataclass
class Chaos:
    db: Path
    url: str
    effects: Path
    ledger: Ledger
    procs: Procs


@pytest.fixture
def chaos(tmp_path: Path) -> Iterator[Chaos]:
    db = tmp_path / "jobwire.db"
    effects = tmp_path / "side-effects.log"
    url = f"sqlite:///{db}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("JOBWIRE_")}
    env.update(
        {
            "JOBWIRE_URL": url,
            "JOBWIRE_PROCESS_CONCURRENCY": "1",
            "JOBWIRE_POLL_SECONDS": "1",
            SIDE_EFFECTS_ENV: str(effects),
            "PYTHONUNBUFFERED": "1",
        }
    )
    procs = Procs(env)
    try:
        yield Chaos(db, url, effects, Ledger(db), procs)
    finally:
        procs.cleanup()
