"""The jobs the webhook tests run, and a FastAPI app serving them as a user would."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

from fastapi import FastAPI

from jobwire import JobContext, Jobwire

PREFIX = "/jobs"

hooks = Jobwire("memory://", embedded_workers=True)

# Gates that ``gated`` jobs wait on; they run on the test's own loop (in-process tests).
GATES: dict[str, asyncio.Event] = {}


@hooks.job
async def add(a: int, b: int = 1) -> int:
    return a + b


@hooks.job
async def steps(ctx: JobContext, n: int) -> int:
    """Reports progress n times, then returns n."""
    for i in range(1, n + 1):
        ctx.progress(i, n)
        await asyncio.sleep(0)
    return n


@hooks.job
async def fails(message: str) -> None:
    raise ValueError(message)


@hooks.job
async def gated(ctx: JobContext, gate: str) -> str:
    """Reports progress once, then waits for the test to open its gate."""
    ctx.progress(1, 2)
    await GATES[gate].wait()
    return gate


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


# Tiny backoffs, so that retries take milliseconds; receivers live on 127.0.0.1.
FAST: dict[str, Any] = {
    "webhook_allow_private": True,
    "webhook_backoff_seconds": 0.01,
    "webhook_backoff_cap_seconds": 0.05,
    "webhook_timeout_seconds": 2.0,
    "webhook_poll_seconds": 0.5,
    "poll_seconds": 0.5,
}


def build(served: Jobwire) -> FastAPI:
    app = FastAPI(title="jobwire webhook test app", lifespan=served.lifespan)
    app.include_router(served.router, prefix=PREFIX)
    return app
