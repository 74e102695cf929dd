"""A maintenance duty: ``run_once()`` does it once (tests call it), ``run()`` repeats it,
and lives through the store being away (backing off, logging the outage once)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging

from jobwire.errors import JobwireError, StoreUnavailable
from jobwire.outage import Outage

log = logging.getLogger("jobwire.services")


class Service(abc.ABC):
    name: str = "service"

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"{self.name}: interval must be > 0, got {interval}")
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def run_once(self) -> int:
        """Do the duty once; return how many jobs it touched."""

    async def run(self) -> None:
        outage = Outage(log, self.name)
        while True:
            wait = self.interval
            try:
                await self.run_once()
                outage.succeeded()
            except StoreUnavailable as exc:
                self.interrupted()
                # Sooner than the interval while the outage is young, never later.
                wait = min(self.interval, outage.failed(exc))
            except JobwireError as exc:
                log.warning("%s: %s", self.name, exc)
            except Exception:
                log.exception("%s failed", self.name)
            await asyncio.sleep(wait)

    def interrupted(self) -> None:
        """Called each time ``run_once`` failed because the store is away."""
        return None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"jobwire-{self.name}"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
