"""jobwire errors → HTTP answers, in one place.

Bodies follow FastAPI's own convention (``{"detail": ...}``; validation failures are
lists of ``{"type", "loc", "msg", "input"}``) so clients handle jobwire's errors and
their app's errors alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from jobwire.errors import (
    AlreadyTerminal,
    IdempotencyConflict,
    IdempotencyInProgress,
    InvalidTransition,
    InvalidWorkflow,
    JobNotFound,
    JobwireError,
    ScheduleNotFound,
    StoreUnavailable,
    UnknownJobError,
    WorkflowEnded,
    WorkflowNotFound,
)

# Seconds a client should wait before trying again while the store is away: short, as
# the store's own clients reconnect within seconds of it coming back.
RETRY_AFTER = "1"


def not_found(job_id: str) -> HTTPException:
    # Identical for "no such job" and "not yours": an id is never a capability.
    return HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")


# An input echoed in an error body is cut to this many characters, and a value JSON
# cannot carry (NaN, a huge number, bytes...) is not echoed at all.
MAX_ECHO = 200


def echoable(value: Any, depth: int = 0) -> Any:
    """``value`` as it may be shown back in an error body: plain JSON, short."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_ECHO else value[:MAX_ECHO] + "…"
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth < 4 and isinstance(value, list | tuple):
        return [echoable(v, depth + 1) for v in value[:20]]
    if depth < 4 and isinstance(value, dict):
        items = list(value.items())[:20]
        return {str(k)[:MAX_ECHO]: echoable(v, depth + 1) for k, v in items}
    return None


def invalid(
    loc: Sequence[str | int], msg: str, kind: str = "value_error", value: Any = None
) -> RequestValidationError:
    error = {"type": kind, "loc": tuple(loc), "msg": msg, "input": echoable(value)}
    return RequestValidationError([error])


def from_validation(exc: ValidationError, prefix: Sequence[str | int]) -> RequestValidationError:
    errors = []
    for err in exc.errors(include_url=False, include_context=False):
        errors.append({**err, "loc": (*prefix, *err["loc"]), "input": echoable(err.get("input"))})
    return RequestValidationError(errors)


def check_schedule(delay: float | None, run_at: datetime | None) -> None:
    """422 unless the submit's schedule can be stored and shown again: one of ``delay``
    and ``run_at``, and a ``run_at`` within years 1 to 9999 once in UTC."""
    if delay is not None and run_at is not None:
        raise invalid(
            ("body", "run_at"), "give either delay or run_at, not both", "schedule_conflict"
        )
    if run_at is None:
        return
    try:
        run_at.astimezone(UTC)
    except (OverflowError, ValueError):
        raise invalid(
            ("body", "run_at"),
            "must fall within years 1 to 9999 once converted to UTC",
            "datetime_range",
            run_at.isoformat(),
        ) from None


def to_http(exc: JobwireError) -> Exception:
    if isinstance(exc, JobNotFound):
        return not_found(exc.job_id)
    if isinstance(exc, InvalidWorkflow):
        return RequestValidationError(
            [
                {**e, "loc": ("body", *e["loc"]), "input": echoable(e.get("input"))}
                for e in exc.errors
            ]
        )
    if isinstance(exc, WorkflowEnded):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, ScheduleNotFound | WorkflowNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, UnknownJobError):
        return invalid(("body", "job"), str(exc), "unknown_job", exc.name)
    if isinstance(exc, IdempotencyConflict):
        return invalid(("header", "Idempotency-Key"), str(exc), "idempotency_key_reused", exc.key)
    if isinstance(exc, IdempotencyInProgress):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, AlreadyTerminal | InvalidTransition):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, StoreUnavailable):
        return HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the job store is unavailable: {outage(exc)}",
            headers={"Retry-After": RETRY_AFTER},
        )
    return HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc))


def outage(exc: StoreUnavailable) -> str:
    """What a 503 tells: the store and its outage in one short line. The driver's
    message may go on with the statement and its arguments: those are for the log."""
    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return line if len(line) <= MAX_ECHO else line[:MAX_ECHO] + "…"


@contextmanager
def http_errors() -> Iterator[None]:
    try:
        yield
    except JobwireError as exc:
        raise to_http(exc) from exc
