"""Claims from many workers in several processes: every job is claimed exactly once."""

from __future__ import annotations

import asyncio
import random

from jobwire.model import State
from jobwire.store.base import Claim, ListQuery
from jobwire.store.postgres import PostgresStore
from tests.support.stores import new

JOBS = 2000
CLAIMERS = 8


async def test_concurrent_claim_storms_through_two_stores_claim_every_job_exactly_once(
    first: PostgresStore, second: PostgresStore
) -> None:
    batch = [new(priority=random.choice([0, 0, 1, 5])) for _ in range(JOBS)]
    for start in range(0, JOBS, 500):
        await first.enqueue(batch[start : start + 500])
    rng = random.Random(7)

    async def claimer(store: PostgresStore, worker: str) -> list[Claim]:
        taken: list[Claim] = []
        while True:
            claims = await store.claim(worker, ["default"], ["crunch"], rng.randint(1, 25), 600.0)
            if not claims:  # the rest is locked by claims in flight, which take it
                return taken
            taken.extend(claims)

    stores = [first, second]
    results = await asyncio.gather(*(claimer(stores[i % 2], f"w{i}") for i in range(CLAIMERS)))

    claimed = [claim for taken in results for claim in taken]
    assert len(claimed) == JOBS
    assert {c.job.id for c in claimed} == {item.id for item in batch}
    assert len({c.token for c in claimed}) == JOBS
    assert all(taken for taken in results), "some claimer never got a job"
    assert await first.claim("w9", ["default"], ["crunch"], 100, 600.0) == []
    page = await second.list(ListQuery(limit=JOBS + 1))
    by_id = {job.id: job for job in page.items}
    for worker, taken in enumerate(results):
        for claim in taken:
            job = by_id[claim.job.id]
            assert job.state is State.RUNNING and job.attempts == 1
            assert (job.claim_token, job.worker_id) == (claim.token, f"w{worker}")


async def test_a_claim_prefers_higher_priority_across_queues_and_skips_rows_being_claimed(
    first: PostgresStore, second: PostgresStore
) -> None:
    low = [new(queue="io") for _ in range(3)]
    high = [new(queue="cpu", priority=9) for _ in range(3)]
    await first.enqueue(low + high)
    held = await first.claim("w1", ["io", "cpu"], ["crunch"], 2, 600.0)
    assert {c.job.id for c in held} <= {j.id for j in high}
    rest = await second.claim("w2", ["io", "cpu"], ["crunch"], 10, 600.0)
    assert rest[0].job.id in {j.id for j in high}
    assert {c.job.id for c in held + rest} == {j.id for j in low + high}
