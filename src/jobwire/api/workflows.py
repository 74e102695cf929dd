"""Workflows over HTTP, owner-scoped like every other route: ``POST P/workflows`` (the
whole graph as one JSON document), ``GET P/workflows/{id}`` (where each step stands)
and ``POST P/workflows/{id}/cancel``."""

# No postponed annotations here: FastAPI reads these signatures at runtime.
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobwire.api.body import read_json, require_json
from jobwire.api.problems import from_validation, http_errors
from jobwire.api.schemas import iso
from jobwire.errors import WorkflowNotFound
from jobwire.workflows import MAX_STEPS, READY, WAITING, Step, WorkflowInfo

if TYPE_CHECKING:
    from jobwire.app import Jobwire

WorkflowIdPath = Annotated[str, Path(max_length=64, pattern=r"^[0-9a-fA-F-]{1,64}$")]


class StepBody(BaseModel):
    """One step: a registered job, its arguments, and the earlier steps it waits for."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, max_length=100, description="Unique; default: its position, as text"
    )
    job: str = Field(max_length=200)
    args: dict[str, Any] = Field(default_factory=dict)
    after: list[str] = Field(
        default_factory=list, max_length=MAX_STEPS, description="Names of earlier steps"
    )
    receive: str | None = Field(
        default=None,
        max_length=100,
        description="The argument that receives the results of `after`: the one result "
        "when it waits for one step, else a list in `after` order",
    )
    gather: bool = Field(default=False, description="Receive a list even of one result")


class WorkflowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[StepBody] = Field(min_length=1, max_length=MAX_STEPS)

    def to_steps(self) -> list[Step]:
        return [
            Step(
                name=step.name if step.name is not None else str(index),
                job=step.job,
                args=step.args,
                after=tuple(step.after),
                receive=step.receive,
                gather=step.gather,
            )
            for index, step in enumerate(self.steps)
        ]


def workflow_view(info: WorkflowInfo, base: str) -> dict[str, Any]:
    """The workflow as clients see it: each step with its state and its job's link."""
    link = f"{base}/workflows/{info.id}"
    steps = []
    for found in info.steps:
        job = found.job
        steps.append(
            {
                "name": found.step.name,
                "job": found.step.job,
                "after": list(found.step.after),
                # "ready" is a passing moment of the service's, not a state to show.
                "state": WAITING if found.state == READY else found.state,
                "reason": found.reason,
                "job_id": job.id if job is not None else None,
                "links": {"job": f"{base}/{job.id}"} if job is not None else None,
            }
        )
    return {
        "id": info.id,
        "state": info.state,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "steps": steps,
        "links": {"self": link, "cancel": link + "/cancel"},
    }


def _base(request: Request, tail: str) -> str:
    path = request.url.path.rstrip("/")
    return path[: -len(tail)] if path.endswith(tail) else path


def add_workflow_routes(router: APIRouter, jobwire: "Jobwire", owner_param: Any) -> None:
    """Before ``GET P/{id}``, which would take ``workflows`` for a job id."""
    not_found: dict[int | str, dict[str, Any]] = {
        404: {"description": "No such workflow, or not yours"}
    }

    @router.post(
        "/workflows",
        tags=["workflows"],
        status_code=status.HTTP_202_ACCEPTED,
        summary="Submit a workflow: steps that wait for others, stored whole",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": WorkflowBody.model_json_schema()}},
            }
        },
        responses={
            413: {"description": "Request body too large"},
            415: {"description": "The body is not declared as application/json"},
            422: {"description": "A step is wrong: the error names the step and field"},
        },
    )
    async def submit_workflow(request: Request, owner: str = owner_param) -> JSONResponse:
        payload = await read_json(request, jobwire.settings.max_body_bytes)
        try:
            body = WorkflowBody.model_validate(payload)
        except ValidationError as exc:
            raise from_validation(exc, ("body",)) from exc
        with http_errors():
            info = await jobwire.submit_workflow(body.to_steps(), owner=owner)
        view = workflow_view(info, _base(request, "/workflows"))
        return JSONResponse(
            view, status_code=status.HTTP_202_ACCEPTED, headers={"Location": view["links"]["self"]}
        )

    @router.get(
        "/workflows/{workflow_id}",
        tags=["workflows"],
        summary="A workflow and where each of its steps stands",
        responses=not_found,
    )
    async def get_workflow(
        request: Request, workflow_id: WorkflowIdPath, owner: str = owner_param
    ) -> JSONResponse:
        with http_errors():
            info = await jobwire.workflow(workflow_id, owner)
        if info is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(WorkflowNotFound(workflow_id)))
        return JSONResponse(workflow_view(info, _base(request, f"/workflows/{workflow_id}")))

    @router.post(
        "/workflows/{workflow_id}/cancel",
        tags=["workflows"],
        status_code=status.HTTP_202_ACCEPTED,
        summary="Cancel every step not yet finished; the others never start",
        responses={**not_found, 409: {"description": "The workflow has already ended"}},
    )
    async def cancel_workflow(
        request: Request, workflow_id: WorkflowIdPath, owner: str = owner_param
    ) -> JSONResponse:
        require_json(request, body_optional=True)
        with http_errors():
            info = await jobwire.cancel_workflow(workflow_id, owner)
        base = _base(request, f"/workflows/{workflow_id}/cancel")
        return JSONResponse(workflow_view(info, base), status_code=status.HTTP_202_ACCEPTED)
