"""A FastAPI app serving the support jobs, as a user would write it.

``build(jobs)`` wires any ``Jobwire`` into an app; ``app`` is one over ``JOBWIRE_URL``
for ``python -m uvicorn tests.support.app:app``.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from jobwire import Jobwire
from tests.support.jobs import jobs

PREFIX = "/jobs"


def build(served: Jobwire) -> FastAPI:
    app = FastAPI(title="jobwire test app", lifespan=served.lifespan)
    app.include_router(served.router, prefix=PREFIX)
    return app


app = build(jobs.using(os.environ.get("JOBWIRE_URL") or "sqlite:///./jobwire-test.db"))
