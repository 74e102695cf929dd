"""Prometheus metrics read from the store at scrape time.

Why not counters in process memory: jobs run in worker processes (often on other hosts),
the API may run in several uvicorn processes, and each would count only what it saw.
The store already counts every transition in the transaction that makes it (see
:mod:`jobwire.store.stats`), so a scrape of any one process reads the same, complete
numbers — no multiprocess directory, no double counting when several processes are
scraped (scrape one: they all answer the same), nothing lost when a process restarts.

A scrape costs three small reads (the counters table, the webhook counters in it, the
worker registry), whatever the number of jobs stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from jobwire.model import State
from jobwire.store.base import Store, WorkerInfo
from jobwire.store.stats import COUNTERS, Histogram, JobStats, counts_by_queue

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_COUNTER_HELP = {
    "enqueued": "Jobs submitted.",
    "started": "Attempts started (a retry starts another).",
    "succeeded": "Jobs that succeeded.",
    "failed": "Jobs that failed for good (attempts spent).",
    "retried": "Failed attempts that were scheduled to run again.",
    "cancelled": "Jobs cancelled.",
    "expired": "Attempts whose lease ran out (their worker stopped heartbeating).",
}
_COUNTER_NAME = {c: c for c in COUNTERS} | {"expired": "lease_expired"}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one scrape reports, read from the store."""

    jobs: list[JobStats]
    webhooks: dict[str, int]
    workers: list[WorkerInfo]
    lease: float  # a worker silent this long is lost
    at: float


async def snapshot(store: Store, lease: float) -> Snapshot:
    return Snapshot(
        jobs=await store.stats(),
        webhooks=await store.webhook_totals(),
        workers=await store.list_workers(),
        lease=lease,
        at=time.time(),
    )


def _histogram(family: HistogramMetricFamily, labels: list[str], histogram: Histogram) -> None:
    buckets = [
        ("+Inf" if bound == float("inf") else repr(bound), float(n))
        for bound, n in histogram.cumulative()
    ]
    family.add_metric(labels, buckets, histogram.sum)


class StoreCollector(Collector):
    """The metric families of one :class:`Snapshot`."""

    def __init__(self, data: Snapshot) -> None:
        self.data = data

    def collect(self) -> Iterator[Metric]:
        data = self.data
        for counter in COUNTERS:
            family = CounterMetricFamily(
                f"jobwire_jobs_{_COUNTER_NAME[counter]}",
                _COUNTER_HELP[counter],
                labels=["queue", "job"],
            )
            for entry in data.jobs:
                family.add_metric([entry.queue, entry.job], entry.totals[counter])
            yield family

        wait = HistogramMetricFamily(
            "jobwire_job_wait_seconds",
            "Time from when an attempt was due (submitted, or its delay or backoff over) "
            "to its start.",
            labels=["queue", "job"],
        )
        run = HistogramMetricFamily(
            "jobwire_job_run_seconds",
            "Time an attempt ran, from its start to its end however it ended.",
            labels=["queue", "job"],
        )
        for entry in data.jobs:
            _histogram(wait, [entry.queue, entry.job], entry.wait)
            _histogram(run, [entry.queue, entry.job], entry.run)
        yield wait
        yield run

        depth = GaugeMetricFamily(
            "jobwire_jobs", "Jobs in the store, by queue and state.", labels=["queue", "state"]
        )
        for queue, states in sorted(counts_by_queue(data.jobs).items()):
            for state in State:
                depth.add_metric([queue, state.value], states[state])
        yield depth

        online = sum(not w.is_lost(data.lease, data.at) for w in data.workers)
        yield GaugeMetricFamily(
            "jobwire_workers_online", "Workers whose heartbeat is fresh.", value=online
        )
        yield GaugeMetricFamily(
            "jobwire_workers_lost",
            "Registered workers that stopped heartbeating without draining.",
            value=len(data.workers) - online,
        )
        yield CounterMetricFamily(
            "jobwire_webhook_deliveries",
            "Webhook messages delivered (a 2xx answered).",
            value=data.webhooks["delivered"],
        )
        yield CounterMetricFamily(
            "jobwire_webhook_failures",
            "Webhook delivery attempts that failed (and may be retried).",
            value=data.webhooks["failures"],
        )


async def exposition(store: Store, lease: float) -> bytes:
    """The Prometheus text exposition of the store's metrics, read now."""
    from prometheus_client import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(await snapshot(store, lease)))
    return generate_latest(registry)
