"""Fixtures every test directory may use. Keep them generic: no jobs, no engines."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A store URL for a fresh SQLite file of this test's own."""
    return "sqlite:///" + str(tmp_path / "jobwire.db")
