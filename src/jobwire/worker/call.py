"""One attempt's call as the executors see it."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobwire.context import CancelFlag, JobContext
from jobwire.errors import JobContractBroken, Retry
from jobwire.limits import Limits
from jobwire.model import EventDraft

if TYPE_CHECKING:
    from jobwire.jobs import JobOptions, JobSpec


@dataclass
class Call:
    spec: JobSpec[Any, Any]
    job_id: str
    attempt: int
    args: dict[str, Any]  # as stored: JSON
    emit: Callable[[EventDraft], None]  # thread-safe, never blocks
    cancel: CancelFlag = field(default_factory=CancelFlag)
    cancel_listeners: list[Callable[[], None]] = field(default_factory=list)
    soft: CancelFlag = field(default_factory=CancelFlag)  # the soft time limit was reached
    soft_listeners: list[Callable[[float], None]] = field(default_factory=list)
    on_start: Callable[[], None] | None = None  # called once, on the worker's loop
    limits: Limits = field(default_factory=Limits)
    ctx: JobContext | None = None

    def started(self) -> None:
        """The job's own code is about to run (in a process: it has been handed to one)."""
        on_start, self.on_start = self.on_start, None
        if on_start is not None:
            on_start()

    def context(self) -> JobContext:
        self.ctx = JobContext(
            self.job_id,
            self.spec.name,
            self.attempt,
            self.emit,
            self.cancel,
            self.spec.options.log_events,
            self.limits,
            self.soft,
        )
        return self.ctx

    def conclude(self, value: Any) -> Any:
        return conclude(self.spec, self.ctx, value, self.limits)

    def request_cancel(self) -> None:
        self.cancel.set()
        for listener in list(self.cancel_listeners):
            listener()

    def reach_soft_limit(self, seconds: float) -> None:
        """The attempt has run for its ``soft_timeout``: ``ctx.cancelled`` and
        ``ctx.soft_limit_reached`` turn true, and an executor that can raise inside
        the job (async, via a listener) raises SoftTimeLimit there."""
        self.soft.set()
        self.cancel.set()
        for listener in list(self.soft_listeners):
            listener(seconds)


class JobRaised(Exception):
    """The job's own code raised; carries the description made where it ran."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error
        super().__init__(f"{error.get('type')}: {error.get('message')}")


def describe(exc: BaseException, options: JobOptions | None = None) -> dict[str, Any]:
    """An exception as the JSON the job record keeps, with the attempt's verdict under
    keys the worker takes out before it stores the error: ``permanent`` when the job
    must fail now (it broke its own contract, or its ``fail_on``/``retry_on`` say so),
    ``retry`` (``{"at", "charge"}``) when the job raised :class:`Retry`.

    Decided where the exception is, since only its class says (in a job process for a
    process job): the rules are the job's options, see JobOptions.retries_error."""
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, Retry):
        # A request, not an error: no traceback to keep.
        error["retry"] = {"at": exc.due(time.time()), "charge": exc.charge}
        return error
    error["traceback"] = "".join(traceback.format_exception(exc))
    if isinstance(exc, JobContractBroken) or (
        options is not None and not options.retries_error(exc)
    ):
        error["permanent"] = True
    return error


def conclude(spec: JobSpec[Any, Any], ctx: JobContext | None, value: Any, limits: Limits) -> Any:
    """What the job returned → its result as JSON, or the error that fails the attempt
    for good: a limit it broke (even if it caught the error), a result that does not
    match its return annotation, or one over JOBWIRE_MAX_RESULT_BYTES."""
    if ctx is not None and ctx.broken is not None:
        raise ctx.broken
    result = spec.dump_result(value)
    limits.check_result(result)
    return result


def invoke_sync(call: Call) -> Any:
    """Run a plain ``def`` job here and return its result as JSON."""
    spec = call.spec
    try:
        kwargs = spec.load_arguments(call.args)
    except Exception as exc:
        raise JobRaised({**describe(exc), "permanent": True}) from exc
    value = spec.fn(call.context(), **kwargs) if spec.takes_context else spec.fn(**kwargs)
    return call.conclude(value)
