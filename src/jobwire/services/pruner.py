"""Deletes finished jobs and their logs once they are older than the retention period."""

from __future__ import annotations

import time

from jobwire.services.base import Service
from jobwire.store.base import Store


class Pruner(Service):
    name = "pruner"

    def __init__(self, store: Store, retention: float, interval: float = 300.0) -> None:
        super().__init__(interval)
        self.store = store
        self.retention = retention

    async def run_once(self) -> int:
        if self.retention <= 0:
            return 0
        return await self.store.prune(time.time() - self.retention)
