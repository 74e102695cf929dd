"""The event format, as a versioned schema: one model per event type, discriminated on
``type``, published in the OpenAPI document's components.

Every channel (SSE, WebSocket, the JSON events page, webhooks, ``jobwire.client``)
carries the same envelope ``{job_id, seq, type, data, at, time}`` (plus ``cursor`` on the
all-jobs streams). ``time`` is ISO 8601 in UTC, the form of the job view's timestamps;
``at`` is the same instant in seconds since the epoch, kept for clients written before
``time``; times inside ``data`` (``scheduled_at``, ``next_run_at``) are epoch seconds.

Additive changes (a new optional field, a new field in ``data``) keep the version;
removing or retyping a field, or a new event type, raises it. Models allow fields they
do not name, so a reader validating against version 1 accepts a later addition.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION: Literal[1] = 1

JSON = Any


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class EventError(_Open):
    type: str = Field(description="The exception's class name, e.g. ValueError, LeaseExpired")
    message: str
    traceback: str | None = None


class QueuedData(_Open):
    """Submitted (``queue``, ``scheduled_at``); or back in the queue: a worker shut down
    gracefully (``released``, ``worker``: the attempt is not charged) or lost its lease
    (``lost``, ``worker``, ``attempt``, ``crashes``, ``max_crashes``, ``error``,
    ``next_run_at``: the worker died or was cut off)."""

    queue: str | None = None
    scheduled_at: float | None = Field(None, description="Epoch seconds")
    released: bool | None = None
    lost: bool | None = None
    worker: str | None = None
    attempt: int | None = None
    crashes: int | None = None
    max_crashes: int | None = None
    error: EventError | None = None
    next_run_at: float | None = Field(None, description="Epoch seconds")


class StartedData(_Open):
    attempt: int = Field(ge=1)
    worker: str


class ProgressData(_Open):
    current: float
    total: float | None = None
    message: str | None = None


class OutputData(_Open):
    output: JSON = Field(description="Any JSON value the job passed to ctx.output()")


class RetryingData(_Open):
    attempt: int = Field(ge=1, description="The attempt that failed")
    error: EventError
    next_run_at: float = Field(description="Epoch seconds")


class SucceededData(_Open):
    result: JSON = Field(description="The job's result (stored once, on the job)")
    attempt: int = Field(ge=1)


class FailedData(_Open):
    error: EventError
    attempt: int | None = None
    lost: bool | None = None
    crashes: int | None = None


class CancelledData(_Open):
    reason: str | None = None
    attempt: int | None = None


class _Envelope(_Open):
    job_id: str
    seq: int = Field(ge=1, description="1, 2, 3 … per job: the SSE id and the resume point")
    at: float = Field(description="Epoch seconds (the same instant as time)")
    time: str = Field(description="ISO 8601, UTC, as in the job view")
    cursor: int | None = Field(None, description="All-jobs streams only: the store-wide cursor")


class QueuedEvent(_Envelope):
    type: Literal["queued"]
    data: QueuedData


class StartedEvent(_Envelope):
    type: Literal["started"]
    data: StartedData


class ProgressEvent(_Envelope):
    type: Literal["progress"]
    data: ProgressData


class OutputEvent(_Envelope):
    type: Literal["output"]
    data: OutputData


class RetryingEvent(_Envelope):
    type: Literal["retrying"]
    data: RetryingData


class SucceededEvent(_Envelope):
    type: Literal["succeeded"]
    data: SucceededData


class FailedEvent(_Envelope):
    type: Literal["failed"]
    data: FailedData


class CancelledEvent(_Envelope):
    type: Literal["cancelled"]
    data: CancelledData


JobEvent = Annotated[
    QueuedEvent
    | StartedEvent
    | ProgressEvent
    | OutputEvent
    | RetryingEvent
    | SucceededEvent
    | FailedEvent
    | CancelledEvent,
    Field(discriminator="type"),
]

EVENT = TypeAdapter(JobEvent)


class EventPage(BaseModel):
    """``GET P/{id}/events`` with ``Accept: application/json``."""

    schema_version: Literal[1] = Field(
        SCHEMA_VERSION, description="The version of the event schema these events follow"
    )
    items: list[JobEvent]
    next_after: int
    state: str
    terminal: bool


def validate_event(event: dict[str, Any]) -> None:
    """Raise ``pydantic.ValidationError`` unless ``event`` fits its type's schema."""
    EVENT.validate_python(event)
