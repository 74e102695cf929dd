"""Notice an ``async def`` job that blocks the worker's event loop.

A task sleeps a short tick and measures how late it wakes. A late wake means something
ran on the loop without yielding — CPU work or a blocking call in an async job — which
stalls every other job and heartbeat in the process; the watchdog logs which async jobs
were running and for how long the loop was blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger("jobwire.watchdog")

TICK = 0.05


class LoopLagWatchdog:
    def __init__(self, threshold: float, running_jobs: Callable[[], list[str]]) -> None:
        self.threshold = threshold
        self._running_jobs = running_jobs
        self._task: asyncio.Task[None] | None = None
        self.worst_lag = 0.0
        self.incidents = 0

    def start(self) -> None:
        if self.threshold > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._watch(), name="jobwire-watchdog"
            )

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                before = loop.time()
                await asyncio.sleep(TICK)
                lag = loop.time() - before - TICK
                if lag >= self.threshold:
                    self.incidents += 1
                    self.worst_lag = max(self.worst_lag, lag)
                    jobs = self._running_jobs()
                    log.warning(
                        "event loop blocked for %.3f s; async jobs running: %s. An async job "
                        "must not do CPU work or blocking calls: use executor='process' or "
                        "'thread', or await asyncio.to_thread(...)",
                        lag,
                        ", ".join(jobs) or "(none)",
                    )
