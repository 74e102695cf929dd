"""Workers over real SQLite files: each test gets its own database and settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobwire import Jobwire
from tests.support import jobs as support
from tests.support.processes import no_new_child_survives

AppFactory = Callable[..., Jobwire]

# Short enough that the tests never wait long on them; long enough for a loaded machine.
FAST = {
    "lease_seconds": 5.0,
    "cancel_grace_seconds": 0.5,
    "poll_seconds": 0.5,
    "process_concurrency": 1,
    "thread_concurrency": 4,
}


@pytest.fixture
def make_app(sqlite_url: str) -> AppFactory:
    """``make_app("job_a", "job_b", **settings)``: the support jobs named, over this
    test's database. Naming only the jobs a test runs keeps it from starting a pool of
    job processes it does not need."""

    def make(*names: str, **overrides: Any) -> Jobwire:
        app = support.jobs.using(sqlite_url, **{**FAST, **overrides})
        app.registry = {name: app.registry[name] for name in names}
        return app

    return make


@pytest.fixture(autouse=True)
def no_job_process_outlives_the_test() -> Iterator[None]:
    """Every job process a test's workers started is gone once the test ends."""
    with no_new_child_survives():
        yield
