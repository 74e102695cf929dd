"""``GET /metrics``: the Prometheus exposition, read from the store at each scrape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import Response

from jobwire import metrics

if TYPE_CHECKING:
    from jobwire.app import Jobwire


def build_metrics_router(jobs: Jobwire, path: str = "/metrics") -> APIRouter:
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    async def scrape() -> Response:
        body = await metrics.exposition(jobs.store, jobs.settings.lease_seconds)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    return router
