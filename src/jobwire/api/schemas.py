"""What travels over HTTP: the submit request, the job view, pages, and the OpenAPI
schema of each registered job's arguments."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from jobwire.limits import json_size
from jobwire.model import EventType, Job, State, expires_at
from jobwire.store.base import Delivery

if TYPE_CHECKING:
    from jobwire.jobs import JobSpec

QUEUE_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
# A list page shows a job's result only up to this size, so a page of jobs with large
# results stays small; the job's own view has it whole.
LIST_RESULT_BYTES = 4_096


class WebhookRequest(BaseModel):
    """Signed Standard Webhooks POSTs to ``url`` for the job's events."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        max_length=2048,
        description="http(s) URL; private, loopback and link-local targets are refused "
        "unless the server allows them",
    )
    events: list[EventType] | None = Field(
        default=None,
        min_length=1,
        description="Event types to send; left out: the terminal ones "
        "(succeeded, failed, cancelled)",
    )


class SubmitRequest(BaseModel):
    """The body of ``POST P``; ``args`` is checked against the job's own schema."""

    model_config = ConfigDict(extra="forbid")
    job: str = Field(min_length=1, max_length=200)
    args: dict[str, Any] = Field(default_factory=dict)
    delay: float | None = Field(default=None, ge=0, le=366 * 24 * 3600)
    run_at: AwareDatetime | None = None
    expires_in: float | None = Field(
        default=None,
        gt=0,
        le=366 * 24 * 3600,
        description="Seconds from now: a job not started by then ends cancelled (expired)",
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="A job not started by then ends cancelled with reason expired",
    )
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    queue: str | None = Field(default=None, pattern=QUEUE_PATTERN)
    webhook: WebhookRequest | None = None

    @field_validator("run_at", mode="before")
    @classmethod
    def _run_at_as_written(cls, value: Any) -> Any:
        """Only what the document says: an RFC 3339 date-time string (Pydantic alone
        would also take epoch numbers, and strings of digits, as times)."""
        if value is None or isinstance(value, datetime):
            return value
        if not isinstance(value, str) or not _DATE_TIME.match(value):
            raise ValueError("expected a date-time such as 2030-01-01T00:00:00Z")
        return value


# The start of an RFC 3339 date-time; Pydantic checks the rest.
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


class ProgressView(BaseModel):
    current: float
    total: float | None = None
    message: str | None = None


class ErrorView(BaseModel):
    type: str
    message: str
    traceback: str | None = None


class LinksView(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    self_: str = Field(alias="self")
    events: str
    ws: str
    cancel: str
    workflow: str | None = Field(default=None, description="Only on a workflow's step")


class WorkflowRef(BaseModel):
    id: str
    step: str


class WebhookDeliveryView(BaseModel):
    id: str = Field(description="The webhook-id header: the same on every attempt")
    url: str
    event: str
    seq: int
    status: Literal["pending", "delivered", "failed", "disabled"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None


class JobView(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    job: str
    state: State
    args: dict[str, Any]
    progress: ProgressView | None
    result: Any
    error: ErrorView | None
    attempts: int = Field(description="Attempts charged: runs that ended in the job's own error")
    max_attempts: int
    crashes: int = Field(
        description="Runs lost with their worker (killed, or cut off from the store): not "
        "charged to attempts; the job fails once they reach max_crashes"
    )
    max_crashes: int
    priority: int
    queue: str
    cancel_requested: bool
    expires_at: datetime | None = Field(
        default=None, description="Not started by then, the job ends cancelled (expired)"
    )
    created_at: datetime
    scheduled_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: LinksView
    workflow: WorkflowRef | None = Field(
        default=None, description="The workflow and step this job is; only on a step"
    )
    webhooks: list[WebhookDeliveryView] | None = Field(
        default=None, description="Webhook deliveries; only in GET P/{id}"
    )
    no_worker: bool | None = Field(
        default=None,
        description="True while the job is queued and no live worker (heard from within "
        "the lease) runs its name on its queue: it waits until one starts; only in GET P/{id}",
    )


class JobListItem(JobView):
    result_omitted: bool = Field(
        description="True when the result is larger than "
        f"{LIST_RESULT_BYTES:,} bytes as JSON and left out (result is null): "
        "GET P/{id} has it whole"
    )


class JobPage(BaseModel):
    items: list[JobListItem]
    next_cursor: str | None


class StreamToken(BaseModel):
    """A short-lived, read-only credential for one job's streams (or all of the caller's)."""

    token: str = Field(description="Pass as ?token= on the events and ws routes")
    expires_at: str = Field(description="ISO 8601, UTC; mint a new one to reconnect after it")
    events_url: str = Field(description="The SSE stream, token included")
    ws_url: str = Field(description="The WebSocket stream, token included")


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def iso(ts: float | None) -> str | None:
    """An epoch time as ISO 8601 in UTC. A time past years 1-9999 (a ``run_at`` of
    9999-12-31T23:59:59.999999Z comes back from a float a hair later) shows as the
    nearest end of the range: no stored time makes a view fail."""
    if ts is None:
        return None
    try:
        moment = datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        moment = _LATEST if ts > 0 else _EARLIEST
    return moment.isoformat().replace("+00:00", "Z")


def job_view(
    job: Job,
    base: str,
    webhooks: Sequence[Delivery] | None = None,
    no_worker: bool | None = None,
) -> dict[str, Any]:
    """The job as clients see it: no claim tokens, leases or owners.

    ``webhooks``, when given, adds the job's webhook deliveries, and ``no_worker`` whether
    it waits for a worker that runs its name: the single-job route reads them (one
    indexed query, one read of the worker registry); lists and stream frames leave them
    out.
    """
    link = f"{base}/{job.id}"
    ws = link + "/ws"
    view = {
        "id": job.id,
        "job": job.job,
        "state": job.state.value,
        "args": job.args,
        "progress": job.progress.as_dict() if job.progress is not None else None,
        "result": job.result,
        "error": _error_view(job.error),
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "crashes": job.crashes,
        "max_crashes": job.max_crashes,
        "priority": job.priority,
        "queue": job.queue,
        "cancel_requested": job.cancel_requested,
        "created_at": iso(job.created_at),
        "scheduled_at": iso(job.scheduled_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "links": {"self": link, "events": link + "/events", "ws": ws, "cancel": link + "/cancel"},
    }
    workflow = job.options.get("workflow") if job.options else None
    if isinstance(workflow, str):  # only on a workflow's steps
        view["workflow"] = {"id": workflow, "step": job.options.get("step")}
        view["links"]["workflow"] = f"{base}/workflows/{workflow}"
    deadline = expires_at(job)
    if deadline is not None:  # only on jobs that expire
        view["expires_at"] = iso(deadline)
    if webhooks is not None:
        view["webhooks"] = [delivery_view(d) for d in webhooks]
    if no_worker is not None:
        view["no_worker"] = no_worker
    return view


def list_item(job: Job, base: str) -> dict[str, Any]:
    """The job view as a list page carries it: a result over LIST_RESULT_BYTES is left
    out (``result: null, result_omitted: true``)."""
    view = job_view(job, base)
    omitted = job.result is not None and _larger_than(job.result, LIST_RESULT_BYTES)
    if omitted:
        view["result"] = None
    view["result_omitted"] = omitted
    return view


def _larger_than(value: Any, limit: int) -> bool:
    if isinstance(value, str):
        if len(value) <= limit // 6 - 2:
            return False  # 6 bytes a character at worst, escaped, and the quotes
        if len(value) > limit:
            return True
    return json_size(value) > limit


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "url": delivery.url,
        "event": delivery.event,
        "seq": delivery.seq,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "last_attempt_at": iso(delivery.last_attempt_at),
        "next_attempt_at": iso(delivery.next_attempt_at),
    }


def _error_view(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "type": str(error.get("type", "Error")),
        "message": str(error.get("message", "")),
        "traceback": error.get("traceback"),
    }


def _inline_refs(schema: Any, defs: dict[str, Any], depth: int = 0) -> Any:
    """Replace local ``$ref``s with their definitions so the schema can sit inline."""
    if depth > 32:
        return {}
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = copy.deepcopy(defs.get(ref.removeprefix("#/$defs/"), {}))
            return _inline_refs(target, defs, depth + 1)
        return {k: _inline_refs(v, defs, depth + 1) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(item, defs, depth + 1) for item in schema]
    return schema


def submit_schema(specs: list[JobSpec[Any, Any]]) -> dict[str, Any]:
    """A discriminated union on ``job``: one variant per registered job."""
    common = SubmitRequest.model_json_schema()
    common_props = {
        k: _inline_refs(v, common.get("$defs", {}))
        for k, v in common["properties"].items()
        if k not in ("job", "args")
    }
    variants = []
    for spec in sorted(specs, key=lambda s: s.name):
        args_schema = spec.args_model.model_json_schema()
        args_inline = _inline_refs(args_schema, args_schema.get("$defs", {}))
        variants.append(
            {
                "title": spec.name,
                "type": "object",
                "description": (spec.fn.__doc__ or "").strip() or f"Run the job {spec.name!r}.",
                "properties": {
                    "job": {"type": "string", "enum": [spec.name]},
                    "args": args_inline,
                    **common_props,
                },
                "required": ["job", "args"] if args_schema.get("required") else ["job"],
                "additionalProperties": False,
            }
        )
    if not variants:
        return common
    return {"oneOf": variants, "discriminator": {"propertyName": "job"}}
