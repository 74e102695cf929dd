"""Tracing: the submitting request's trace context is stored with the job, and every
attempt — run by a standalone worker process, in a job process — is a span under it."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi import FastAPI

from jobwire import State
from tests.cli.conftest import ROOT, Proc, jobwire_cmd, subprocess_env
from tests.tracing import app as tracing_app


async def test_each_attempt_is_a_span_under_the_request_that_submitted_the_job(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    spans_file = tmp_path / "spans.json"
    worker = Proc(
        jobwire_cmd("worker", "tests.tracing.app:jobs", "--url", db_url, "--processes", "1"),
        env=subprocess_env(SPANS_FILE=str(spans_file)),
    )
    try:
        worker.wait_for(r"worker \S+ started")
        jobs = tracing_app.jobs.using(db_url)  # this process serves the API only
        api = FastAPI()
        api.include_router(jobs.router, prefix="/jobs")
        # The client's span: its context travels in the traceparent header.
        trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
        headers = {"traceparent": f"00-{trace_id}-{client_span}-01"}
        async with jobs:
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                submitted = await client.post(
                    "/jobs", json={"job": "square", "args": {"n": 7}}, headers=headers
                )
                assert submitted.status_code == 202, submitted.text
                job_id = submitted.json()["id"]
                done = await jobs.handle(job_id).wait(timeout=60)
        assert (done.state, done.result, done.attempts) == (State.SUCCEEDED, 49, 2)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.report()
    finally:
        worker.kill()

    spans = [s for s in json.loads(spans_file.read_text()) if s["name"] == "jobwire.attempt square"]
    assert len(spans) == 2
    for attempt, span in enumerate(
        sorted(spans, key=lambda s: s["attributes"]["jobwire.attempt"]), 1
    ):
        assert (span["trace_id"], span["parent_id"]) == (trace_id, client_span)
        assert span["attributes"]["jobwire.job_id"] == job_id
        assert span["attributes"]["jobwire.job"] == "square"
        assert span["attributes"]["jobwire.attempt"] == attempt
    first, second = sorted(spans, key=lambda s: s["attributes"]["jobwire.attempt"])
    assert (first["status"], second["status"]) == ("ERROR", "UNSET")
    assert first["attributes"]["jobwire.outcome"] == "failed"
    assert second["attributes"]["jobwire.outcome"] == "succeeded"


def test_jobwire_runs_jobs_without_opentelemetry_installed(tmp_path: Path) -> None:
    """In a fresh interpreter where importing opentelemetry fails, as when it is absent."""
    script = f"""
import asyncio, sys
sys.modules["opentelemetry"] = None  # makes "import opentelemetry" raise ImportError
from jobwire import Jobwire

jobs = Jobwire("sqlite:///{tmp_path / "plain.db"}")

@jobs.job
async def add(a: int, b: int) -> int:
    return a + b

async def main() -> None:
    async with jobs.lifespan():
        handle = await add.enqueue(a=2, b=3)
        print(await handle.result(timeout=30))
    assert "opentelemetry.trace" not in sys.modules

asyncio.run(main())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "5"
