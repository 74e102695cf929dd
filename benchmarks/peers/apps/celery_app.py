"""Celery: ``celery -A benchmarks.peers.apps.celery_app worker`` (Redis broker and results)."""

from __future__ import annotations

import os

from celery import Celery

from benchmarks.peers.apps._stamp import stamp as _stamp

app = Celery(
    "bench", broker=os.environ.get("BENCH_URL"), backend=os.environ.get("BENCH_RESULT_URL")
)


@app.task(name="noop")
def noop() -> None:
    return None


@app.task(name="stamp")
def stamp(port: int) -> None:
    _stamp(port)


def prefill(count: int) -> None:
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            noop.apply_async(producer=producer)


class Client:
    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def submit(self, port: int) -> object:
        return stamp.delay(port)

    async def wait(self, result: object) -> None:
        result.get(timeout=30)  # type: ignore[attr-defined]
