"""The app for the HTTP submit benchmark: the jobs router beside a bare endpoint."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from benchmarks.noop_app import jobs

app = FastAPI(lifespan=jobs.lifespan)
app.include_router(jobs.router, prefix="/jobs")


@app.post("/bare", status_code=202)
async def bare(body: dict[str, object]) -> JSONResponse:
    # What a hand-rolled endpoint does before any persistence: parse, answer 202.
    return JSONResponse({"id": "x", "state": "queued", "job": body.get("job")}, status_code=202)
