"""Schedules and bulk operations over HTTP, owner-scoped like every other route:
``GET P/schedules``, ``POST P/schedules/{name}/pause`` and ``…/resume``, and
``POST P/bulk/cancel`` and ``POST P/bulk/purge`` (``?dry_run=true`` only counts)."""

# No postponed annotations here: FastAPI reads these signatures at runtime.
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from jobwire.api.body import read_json, require_json
from jobwire.api.problems import from_validation, http_errors
from jobwire.model import State
from jobwire.store.base import BulkQuery

if TYPE_CHECKING:
    from jobwire.app import Jobwire


F = TypeVar("F", bound=BaseModel)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its JSON itself (strictly)."""
    return {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


async def _filter(request: Request, model: type[F], limit: int) -> F:
    """A filter body read as every JSON body is (bounded, strict, JSON only), then
    validated: 422 naming the field."""
    payload = await read_json(request, limit, empty={})
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise from_validation(exc, ("body",)) from exc


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
    async def pause(request: Request, name: str, owner: str = owner_param) -> JSONResponse:
        require_json(request, body_optional=True)
        with http_errors():
            info = await jobwire.pause_schedule(name, True, owner)
        return JSONResponse(info.as_dict())

    @router.post(
        "/schedules/{name}/resume",
        tags=["schedules"],
        summary="Resume a schedule; the ticks passed while paused do not fire",
        responses=not_found,
    )
    async def resume(request: Request, name: str, owner: str = owner_param) -> JSONResponse:
        require_json(request, body_optional=True)
        with http_errors():
            info = await jobwire.pause_schedule(name, False, owner)
        return JSONResponse(info.as_dict())

    async def bulk(
        query: BulkQuery, dry_run: bool, act: Callable[[BulkQuery], Awaitable[int]]
    ) -> JSONResponse:
        """Count the matching jobs (a dry run) or act on them; answers how many."""
        with http_errors():
            if dry_run:
                count = len(await jobwire.store.matching(query))
            else:
                count = await act(query)
        return JSONResponse({"count": count, "dry_run": dry_run})

    @router.post(
        "/bulk/cancel",
        tags=["jobs"],
        openapi_extra=_body_schema(BulkFilter),
        summary="Cancel the caller's unfinished jobs that match; answers how many",
    )
    async def bulk_cancel(
        request: Request,
        owner: str = owner_param,
        dry_run: Annotated[bool, Query(description="Only count them")] = False,
    ) -> JSONResponse:
        body = await _filter(request, BulkFilter, jobwire.settings.max_body_bytes)
        return await bulk(body.query(owner), dry_run, jobwire.store.cancel_matching)

    @router.post(
        "/bulk/purge",
        tags=["jobs"],
        openapi_extra=_body_schema(PurgeFilter),
        summary="Delete the caller's queued jobs that match; answers how many",
    )
    async def bulk_purge(
        request: Request,
        owner: str = owner_param,
        dry_run: Annotated[bool, Query(description="Only count them")] = False,
    ) -> JSONResponse:
        body = await _filter(request, PurgeFilter, jobwire.settings.max_body_bytes)
        return await bulk(body.query(owner), dry_run, jobwire.store.purge_queued)
