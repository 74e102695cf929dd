"""``GET /metrics``: scraped and parsed with prometheus-client's own parser, the numbers
match the jobs run — by a standalone worker process, submitted through another one."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from jobwire import State
from tests.cli import app as cli_app
from tests.cli.conftest import Proc

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(app: FastAPI) -> tuple[str, Samples]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.headers["content-type"], samples


def job(name: str, **more: str) -> frozenset[tuple[str, str]]:
    return frozenset({"queue": "default", "job": name, **more}.items())


async def test_metrics_count_what_a_worker_process_ran(worker_process: Proc, db_url: str) -> None:
    jobs = cli_app.jobs.using(db_url)  # this process only submits and serves /metrics
    api = FastAPI()
    api.include_router(jobs.metrics_router)
    async with jobs:
        handles = [await jobs.enqueue("add", {"a": i, "b": 1}) for i in range(3)]
        handles.append(await jobs.enqueue("boom", {}))
        handles.append(await jobs.enqueue("flaky", {}))
        later = await jobs.enqueue("add", {"a": 0, "b": 0}, delay=3600)
        await jobs.cancel(later.id)
        ended = [await handle.wait(timeout=30) for handle in handles]
        assert [j.state for j in ended] == [State.SUCCEEDED] * 3 + [
            State.FAILED,
            State.SUCCEEDED,
        ]
        content_type, samples = await scrape(api)

    assert content_type.startswith("text/plain; version=0.0.4")
    expected = {
        ("jobwire_jobs_enqueued_total", job("add")): 4,
        ("jobwire_jobs_started_total", job("add")): 3,
        ("jobwire_jobs_succeeded_total", job("add")): 3,
        ("jobwire_jobs_cancelled_total", job("add")): 1,
        ("jobwire_jobs_failed_total", job("boom")): 1,
        ("jobwire_jobs_started_total", job("flaky")): 2,
        ("jobwire_jobs_retried_total", job("flaky")): 1,
        ("jobwire_jobs_succeeded_total", job("flaky")): 1,
        ("jobwire_jobs_lease_expired_total", job("flaky")): 0,
        ("jobwire_job_wait_seconds_count", job("add")): 3,
        ("jobwire_job_run_seconds_count", job("flaky")): 2,
        ("jobwire_job_run_seconds_bucket", job("flaky", le="+Inf")): 2,
        ("jobwire_jobs", frozenset({"queue": "default", "state": "succeeded"}.items())): 4,
        ("jobwire_jobs", frozenset({"queue": "default", "state": "failed"}.items())): 1,
        ("jobwire_jobs", frozenset({"queue": "default", "state": "cancelled"}.items())): 1,
        ("jobwire_jobs", frozenset({"queue": "default", "state": "queued"}.items())): 0,
        ("jobwire_workers_online", frozenset()): 1,
        ("jobwire_workers_lost", frozenset()): 0,
        ("jobwire_webhook_deliveries_total", frozenset()): 0,
    }
    assert {key: samples.get(key) for key in expected} == expected
    assert samples[("jobwire_job_run_seconds_sum", job("add"))] < 30
