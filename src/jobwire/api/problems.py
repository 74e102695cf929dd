"""jobwire errors → HTTP answers, in one place.

Bodies follow FastAPI's own convention (``{"detail": ...}``; validation failures are
lists of ``{"type", "loc", "msg", "input"}``) so clients handle jobwire's errors and
their app's errors alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from jobwire.errors import (
    AlreadyTerminal,
    IdempotencyConflict,
    IdempotencyInProgress,
    InvalidTransition,
    JobNotFound,
    JobwireError,
    ScheduleNotFound,
    StoreUnavailable,
    UnknownJobError,
)

# Seconds a client should wait before trying again while the store is away: short, as
# the store's own clients reconnect within seconds of it coming back.
RETRY_AFTER = "1"


def not_found(job_id: str) -> HTTPException:
    # Identical for "no such job" and "not yours": an id is never a capability.
    return HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")


def invalid(
    loc: Sequence[str | int], msg: str, kind: str = "value_error", value: Any = None
) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": tuple(loc), "msg": msg, "input": value}])


def from_validation(exc: ValidationError, prefix: Sequence[str | int]) -> RequestValidationError:
    errors = []
    for err in exc.errors(include_url=False, include_context=False):
        errors.append({**err, "loc": (*prefix, *err["loc"])})
    return RequestValidationError(errors)


def to_http(exc: JobwireError) -> Exception:
    if isinstance(exc, JobNotFound):
        return not_found(exc.job_id)
    if isinstance(exc, ScheduleNotFound):
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
            f"the job store is unavailable: {exc}",
            headers={"Retry-After": RETRY_AFTER},
        )
    return HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc))


@contextmanager
def http_errors() -> Iterator[None]:
    try:
        yield
    except JobwireError as exc:
        raise to_http(exc) from exc
