"""What ``jobwire top`` shows: jobs per queue and state, and the workers, as rich tables.

Everything is read from the store's counters and worker registry (see
:mod:`jobwire.store.stats`), so a refresh costs a few small reads however many jobs the
store holds, and every host sees the same picture.
"""

from __future__ import annotations

import time
from collections import defaultdict

from rich.console import Group
from rich.table import Table
from rich.text import Text

from jobwire.metrics import Snapshot
from jobwire.model import State
from jobwire.store.stats import Histogram, counts_by_queue


def _p95(histogram: Histogram) -> str:
    """The bucket bound under which 95% of observations fall ("-" when none)."""
    total = histogram.count
    if not total:
        return "-"
    for bound, seen in histogram.cumulative():
        if seen >= 0.95 * total:
            return f"≤{bound:g}s" if bound != float("inf") else ">1h"
    return "-"  # pragma: no cover - the last bucket holds every observation


def _merged(histograms: list[Histogram]) -> Histogram:
    buckets = [sum(column) for column in zip(*(h.buckets for h in histograms), strict=True)]
    return Histogram(tuple(buckets), sum(h.sum for h in histograms))


def queues_table(data: Snapshot) -> Table:
    table = Table(title="queues", title_justify="left", expand=False)
    table.add_column("queue")
    for state in State:
        table.add_column(state.value, justify="right")
    for column in ("retried", "lease expired", "wait p95", "run p95"):
        table.add_column(column, justify="right")
    by_queue = defaultdict(list)
    for entry in data.jobs:
        by_queue[entry.queue].append(entry)
    for queue, states in sorted(counts_by_queue(data.jobs).items()):
        entries = by_queue[queue]
        table.add_row(
            queue,
            *(str(states[state]) for state in State),
            str(sum(e.totals["retried"] for e in entries)),
            str(sum(e.totals["expired"] for e in entries)),
            _p95(_merged([e.wait for e in entries])),
            _p95(_merged([e.run for e in entries])),
        )
    return table


def workers_table(data: Snapshot) -> Table:
    table = Table(title="workers", title_justify="left", expand=False)
    for column in ("worker", "host", "pid", "queues", "running", "heartbeat", "version", "status"):
        table.add_column(column, justify="right" if column in ("pid", "running") else "left")
    for worker in data.workers:
        lost = worker.is_lost(data.lease, data.at)
        table.add_row(
            worker.id,
            worker.host,
            str(worker.pid),
            ",".join(worker.queues),
            f"{len(worker.running)}/{worker.concurrency}",
            f"{max(0.0, data.at - worker.last_heartbeat):.1f}s ago",
            worker.version,
            Text("lost", style="red") if lost else Text("online", style="green"),
        )
    return table


def render(data: Snapshot, source: str) -> Group:
    stamp = time.strftime("%H:%M:%S", time.localtime(data.at))
    online = sum(not w.is_lost(data.lease, data.at) for w in data.workers)
    header = Text.assemble(
        ("jobwire top", "bold"),
        f"  {source}  {stamp}  workers online {online}/{len(data.workers)}  "
        f"webhooks delivered {data.webhooks['delivered']}, failed attempts "
        f"{data.webhooks['failures']}",
    )
    return Group(header, queues_table(data), workers_table(data))
