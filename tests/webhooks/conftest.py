"""A receiver per test, a secret per test, and jobwire apps with fast webhook settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from jobwire import Jobwire
from tests.webhooks.app import FAST, hooks, new_secret
from tests.webhooks.receiver import Receiver

MakeApp = Callable[..., Jobwire]


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


@pytest.fixture
def make_app(sqlite_url: str, secret: str) -> MakeApp:
    """``make_app(**settings)``: the test jobs over this test's SQLite file, webhooks on."""

    def make(**overrides: Any) -> Jobwire:
        return hooks.using(sqlite_url, **{"webhook_secret": secret, **FAST, **overrides})

    return make


@pytest.fixture
async def running(make_app: MakeApp) -> AsyncIterator[Jobwire]:
    """The app with its worker and services (the outbox among them) on this loop."""
    app = make_app()
    async with app.lifespan():
        yield app
