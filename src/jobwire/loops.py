"""Which event loop the command-line programs run on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from jobwire.errors import ConfigError


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A loop factory for ``asyncio.Runner``; None means the standard loop.

    uvloop takes a worker's scheduling overhead (tasks woken, futures resolved, wake-ups
    from the store's threads) down by a measurable share, so ``auto`` uses it when it is
    installed, as uvicorn does for the server.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("JOBWIRE_EVENT_LOOP=uvloop, but uvloop is not installed") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
