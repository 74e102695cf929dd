"""Schedules and bulk operations over HTTP, owner-scoped like every other route:
``GET P/schedules``, ``POST P/schedules/{name}/pause`` and ``…/resume``, and
``POST P/bulk/cancel`` and ``POST P/bulk/purge`` (``?dry_run=true`` only counts)."""

# No postponed annotations here: FastAPI reads these signatures at runtime.
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from jobwire.api.problems import http_errors
from jobwire.model import State
from jobwire.store.base import BulkQuery

if TYPE_CHECKING:
    from jobwire.app import Jobwire


class BulkFilter(BaseModel):
    """Which unfinished jobs of the caller: every field given must hold."""

    model_config = ConfigDict(extra="forbid")

    job: str | None = Field(default=None, max_length=200)
    queue: str | None = Field(default=None, max_length=64)
    states: list[Literal["queued", "running"]] = Field(default=["queued", "running"], min_length=1)
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None

    def query(self, owner: str) -> BulkQuery:
        return BulkQuery(
            owner=owner,
            states=tuple(State(s) for s in dict.fromkeys(self.states)),
            job=self.job,
            queue=self.queue,
            created_after=_epoch(self.created_after),
            created_before=_epoch(self.created_before),
        )


class PurgeFilter(BaseModel):
    """Which queued jobs of the caller: every field given must hold."""

    model_config = ConfigDict(extra="forbid")

    job: str | None = Field(default=None, max_length=200)
    queue: str | None = Field(default=None, max_length=64)
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None

    def query(self, owner: str) -> BulkQuery:
        return BulkQuery(
            owner=owner,
            states=(State.QUEUED,),
            job=self.job,
            queue=self.queue,
            created_after=_epoch(self.created_after),
            created_before=_epoch(self.created_before),
        )


def _epoch(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def add_schedule_routes(router: APIRouter, jobwire: "Jobwire", owner_param: Any) -> None:
    """Before ``GET P/{id}``, which would take ``schedules`` for a job id."""
    not_found: dict[int | str, dict[str, Any]] = {
        404: {"description": "No schedule of that name, or not yours"}
    }

    @router.get("/schedules", tags=["schedules"], summary="The schedules declared in code")
    async def list_schedules(owner: str = owner_param) -> JSONResponse:
        with http_errors():
            infos = await jobwire.schedule_infos(owner)
        return JSONResponse({"items": [info.as_dict() for info in infos]})

    @router.post(
        "/schedules/{name}/pause",
        tags=["schedules"],
        summary="Pause a schedule in every process",
        responses=not_found,
    )
    async def pause(name: str, owner: str = owner_param) -> JSONResponse:
        with http_errors():
            info = await jobwire.pause_schedule(name, True, owner)
        return JSONResponse(info.as_dict())

    @router.post(
        "/schedules/{name}/resume",
        tags=["schedules"],
        summary="Resume a schedule; the ticks passed while paused do not fire",
        responses=not_found,
    )
    async def resume(name: str, owner: str = owner_param) -> JSONResponse:
        with http_errors():
            info = await jobwire.pause_schedule(name, False, owner)
        return JSONResponse(info.as_dict())

    @router.post(
        "/bulk/cancel",
        tags=["jobs"],
        summary="Cancel the caller's unfinished jobs that match; answers how many",
    )
    async def bulk_cancel(
        body: BulkFilter,
        owner: str = owner_param,
        dry_run: Annotated[bool, Query(description="Only count them")] = False,
    ) -> JSONResponse:
        query = body.query(owner)
        with http_errors():
            if dry_run:
                count = len(await jobwire.store.matching(query))
            else:
                count = await jobwire.store.cancel_matching(query)
        return JSONResponse({"count": count, "dry_run": dry_run})

    @router.post(
        "/bulk/purge",
        tags=["jobs"],
        summary="Delete the caller's queued jobs that match; answers how many",
    )
    async def bulk_purge(
        body: PurgeFilter,
        owner: str = owner_param,
        dry_run: Annotated[bool, Query(description="Only count them")] = False,
    ) -> JSONResponse:
        query = body.query(owner)
        with http_errors():
            if dry_run:
                count = len(await jobwire.store.matching(query))
            else:
                count = await jobwire.store.purge_queued(query)
        return JSONResponse({"count": count, "dry_run": dry_run})
