"""The app the channel tests serve with ``python -m uvicorn tests.channels.app:app``.

Settings come from the environment (``JOBWIRE_URL`` and friends), as a user's app would
take them. Besides the jobs router it serves ``/follow``, a page that follows one job
with the browser's own ``EventSource`` and writes each event into the DOM.
"""

from __future__ import annotations

import asyncio
import os

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import HTMLResponse

from jobwire import Backoff, JobContext, Jobwire

jobs = Jobwire()

# How often a job waiting on its gate file looks for it: the job's own pace, not a test's.
GATE_POLL = 0.02


@jobs.job
async def emit(
    ctx: JobContext,
    n: int,
    pace: float = 0.0,
    progress_every: int = 0,
    pad: int = 0,
    breather: float = 0.0,
) -> int:
    """Publishes ``n`` outputs ``{"i": 0..n-1}`` (with ``pad``, also ``"pad": "x" * pad``);
    with ``pace``, sleeps that long after each; with ``breather``, that long after each
    500, so that its reporter's backlog (the job's own memory) stays small."""
    padding = {"pad": "x" * pad} if pad else {}
    for i in range(n):
        ctx.output({"i": i, **padding})
        if progress_every and (i + 1) % progress_every == 0:
            ctx.progress(i + 1, n)
        if pace:
            await asyncio.sleep(pace)
        elif (i + 1) % 500 == 0:
            await asyncio.sleep(breather)  # let the reporter write what is buffered
    return n


@jobs.job
async def sized(size: int) -> str:
    """Returns ``size`` characters: a result as large as a test wants."""
    return "x" * size


@jobs.job(retries=3, backoff=Backoff(base=0.01, cap=0.05))
async def gated(ctx: JobContext, before: int, after: int, gate: str) -> int:
    """``before`` outputs, then waits until the file ``gate`` exists (or a cancel), then
    ``after`` more. Retried when its server dies, so a restarted server finishes it."""
    for i in range(before):
        ctx.output({"i": i, "attempt": ctx.attempt})
    while not os.path.exists(gate):  # noqa: ASYNC240 - one stat, quicker than a thread hop
        ctx.check_cancelled()
        await asyncio.sleep(GATE_POLL)
    for i in range(before, before + after):
        ctx.output({"i": i, "attempt": ctx.attempt})
    return before + after


FOLLOW_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>follow</title></head>
<body>
<ol id="events"></ol>
<p>opens: <span id="opens">0</span>, errors: <span id="errors">0</span></p>
<script>
const id = new URLSearchParams(location.search).get("job");
const source = new EventSource("/jobs/" + id + "/events");
window.source = source;
const list = document.getElementById("events");
let opens = 0, errors = 0;
source.onopen = () => { document.getElementById("opens").textContent = ++opens; };
source.onerror = () => { document.getElementById("errors").textContent = ++errors; };
for (const type of ["queued", "started", "progress", "output", "retrying",
                    "succeeded", "failed", "cancelled"]) {
  source.addEventListener(type, (message) => {
    const item = document.createElement("li");
    item.dataset.id = message.lastEventId;
    item.dataset.type = type;
    item.textContent = message.data;
    list.appendChild(item);
  });
}
</script>
</body></html>
"""

app = FastAPI(title="jobwire channel tests", lifespan=jobs.lifespan)
# Compression on for every media type, as many real apps (and older Starlettes) have it:
# event streams must still come through uncompressed and unbuffered.
app.add_middleware(GZipMiddleware, minimum_size=1, exclude_content_types=())
# A page on another origin calls the API as the README shows, with FastAPI's own CORS.
if os.environ.get("CHANNELS_CORS_ORIGINS"):
    app.add_middleware(
        CORSMiddleware,
        allow_origins=os.environ["CHANNELS_CORS_ORIGINS"].split(","),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
        expose_headers=["Location"],
    )
app.include_router(jobs.router, prefix="/jobs")


@app.get("/follow", response_class=HTMLResponse, include_in_schema=False)
async def follow_page() -> str:
    return FOLLOW_PAGE
