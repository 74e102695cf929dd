"""Permits under contention on PostgreSQL: four stores (each its own pool) asking at
once for permits of one key never get more than the limits allow."""

from __future__ import annotations

import asyncio
import time

from jobwire.store.postgres import PostgresStore
from jobwire.throttle import Limit

STORES, ASKS = 4, 15


async def test_four_stores_asking_at_once_never_pass_the_rate_or_the_concurrency(
    pg_url: str,
) -> None:
    stores = [PostgresStore.from_url(pg_url, max_size=4) for _ in range(STORES)]
    await asyncio.gather(*(store.open() for store in stores))
    rate = Limit("job:send", rate=7, period=60.0)
    running = Limit("queue:emails", concurrency=3)
    try:
        now = time.time()
        answers = await asyncio.gather(
            *(
                store.acquire_permit([rate], f"r{s}-{i}", now + 60, now)
                for s, store in enumerate(stores)
                for i in range(ASKS)
            ),
            *(
                store.acquire_permit([running], f"c{s}-{i}", now + 60, now)
                for s, store in enumerate(stores)
                for i in range(ASKS)
            ),
        )
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    by_rate, by_running = answers[: STORES * ASKS], answers[STORES * ASKS :]
    assert by_rate.count(None) == 7
    assert by_running.count(None) == 3
