"""The one exception tree of jobwire.

::

    JobwireError
    ├── ConfigError               a setting or a job definition is wrong (raised early)
    │   └── JobDefinitionError    @jobs.job refused a function (names the parameter)
    ├── UnknownJobError           no job is registered under that name
    ├── InvalidArguments          submit: the arguments do not fit the signature (a ValueError)
    ├── JobNotFound               no such job, or not visible to this owner
    ├── ScheduleNotFound          no schedule of that name is declared, or not this owner's
    ├── WorkflowNotFound          no such workflow, or not visible to this owner
    ├── InvalidWorkflow           submit: a step of the workflow is wrong (a ValueError; names
    │                             the step and field)
    ├── WorkflowEnded             cancel: the workflow has already succeeded, failed or been
    │                             cancelled
    ├── InvalidTransition         the state machine refuses the move
    │   └── AlreadyTerminal       the job has already succeeded, failed or been cancelled
    ├── StaleClaim                a fenced write carried a claim token that is no longer current
    ├── IdempotencyConflict       an idempotency key reused with another payload
    ├── IdempotencyInProgress     the first request with that key is still being processed
    ├── StoreUnavailable          the store cannot be reached; retry later
    ├── HTTPError                 jobwire.client: an answer no other class describes
    │   ├── Unauthorized          401: no API key, or not one the server knows
    │   └── TooManyRequests       429: a limit of the server (open streams) was reached
    └── JobFailure                raised inside or about a job's own run
        ├── JobFailed             handle.result(): the job ended failed (carries its error)
        ├── JobCancelled          the job was asked to stop (ctx.check_cancelled())
        ├── JobTimeout            the attempt ran past its timeout
        ├── SoftTimeLimit         raised inside an async job at its soft_timeout (and by
        │                         ctx.check_cancelled() in a sync one): save and stop
        ├── Retry                 raised by a job to ask for another attempt at a time of
        │                         its choosing, charged to its retries or not
        ├── WorkerProcessDied     the process running the attempt exited without a result
        ├── JobImportError        a job process could not import the job's module (its
        │                         environment's fault, not the job's)
        └── JobContractBroken     the job broke its own contract; the attempt fails, never retried
            ├── ResultInvalid     the result does not match the return annotation
            └── LimitExceeded     a result or output is larger than its setting allows

Driver errors (sqlite3, asyncpg, redis) are mapped to this tree where they enter, in the
store that uses that driver; nothing outside ``jobwire.store`` sees them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class JobwireError(Exception):
    """Base of every error jobwire raises on purpose."""


class ConfigError(JobwireError):
    """A setting or definition is invalid; raised at start-up or decoration time."""


class JobDefinitionError(ConfigError):
    """A function cannot be a job as written."""


class UnknownJobError(JobwireError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(
            f"unknown job {name!r}; registered jobs: {', '.join(self.known) or '(none)'}"
        )


class InvalidArguments(JobwireError, ValueError):
    """Arguments refused by the job's signature; ``errors`` are Pydantic's, each naming
    its field by ``loc``."""

    def __init__(self, job: str, errors: list[dict[str, Any]]) -> None:
        self.job = job
        self.errors = errors
        lines = "; ".join(_error_line(e) for e in errors)
        super().__init__(f"invalid arguments for job {job!r}: {lines}")


def _error_line(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "(arguments)"
    line = f"{where}: {error.get('msg', 'invalid')}"
    if error.get("type") != "missing" and "input" in error:
        got = repr(error["input"])
        line += f" (got {got if len(got) <= 80 else got[:77] + '...'})"
    return line


class JobNotFound(JobwireError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} not found")


class ScheduleNotFound(JobwireError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"schedule {name!r} not found")


class WorkflowNotFound(JobwireError):
    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"workflow {workflow_id} not found")


class WorkflowEnded(JobwireError):
    def __init__(self, workflow_id: str, state: str) -> None:
        self.workflow_id = workflow_id
        self.state = state
        super().__init__(f"workflow {workflow_id} is {state}; cannot cancel it")


class InvalidWorkflow(JobwireError, ValueError):
    """A workflow refused at submit; ``errors`` are Pydantic-shaped, each ``loc`` starting
    at ``("steps", index, ...)``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("invalid workflow: " + "; ".join(_error_line(e) for e in errors))


class InvalidTransition(JobwireError):
    def __init__(self, job_id: str, state: str, action: str) -> None:
        self.job_id = job_id
        self.state = state
        self.action = action
        super().__init__(f"job {job_id} is {state}; cannot {action}")


class AlreadyTerminal(InvalidTransition):
    pass


class StaleClaim(JobwireError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id}: claim token is no longer current "
            "(the lease expired or the job was finished by another attempt)"
        )


class IdempotencyConflict(JobwireError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"Idempotency-Key {key!r} was already used with a different request payload"
        )


class IdempotencyInProgress(JobwireError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"a request with Idempotency-Key {key!r} is still being processed")


class StoreUnavailable(JobwireError):
    """The store cannot be reached right now."""


class HTTPError(JobwireError):
    """``jobwire.client``: the server answered ``status`` with ``detail`` (its body's)."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"HTTP {status}: {detail}")


class Unauthorized(HTTPError):
    pass


class TooManyRequests(HTTPError):
    pass


class JobFailure(JobwireError):
    """Raised inside a job or about its run."""


class JobFailed(JobFailure):
    def __init__(self, job_id: str, error: dict[str, object] | None) -> None:
        self.job_id = job_id
        self.error = error or {}
        super().__init__(
            f"job {job_id} failed: "
            f"{self.error.get('type', 'Error')}: {self.error.get('message', '')}"
        )


class JobCancelled(JobFailure):
    def __init__(self, job_id: str = "") -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} was cancelled" if job_id else "job was cancelled")


class JobTimeout(JobFailure):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"attempt exceeded its timeout of {seconds:g} s")


class SoftTimeLimit(JobFailure):
    """The attempt reached its ``soft_timeout``: the job should save what it has and stop
    before the hard ``timeout`` stops it."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds
        limit = "" if seconds is None else f" of {seconds:g} s"
        super().__init__(
            f"attempt reached its soft time limit{limit}; "
            "the hard timeout will stop it if it goes on"
        )


class Retry(JobFailure):
    """Raised by a job to run again later: ``raise Retry(delay=30)`` or ``Retry(at=when)``.

    The attempt ends and the job is queued again at that time, whatever ``retry_on``
    and ``fail_on`` say. With ``charge=True`` (the default) the attempt counts against ``retries``
    and the job fails once they are spent; with ``charge=False`` it does not count (the
    job runs again with the same ``ctx.attempt``), and nothing bounds how often a job
    may ask. A job whose cancel was requested is never run again.
    """

    def __init__(
        self,
        message: str = "",
        *,
        delay: float | None = None,
        at: datetime | float | None = None,
        charge: bool = True,
    ) -> None:
        if delay is not None and at is not None:
            raise ValueError("Retry: give either delay or at, not both")
        if delay is not None and delay < 0:
            raise ValueError(f"Retry: delay must be >= 0 seconds, got {delay}")
        if isinstance(at, datetime) and at.tzinfo is None:
            raise ValueError("Retry: at must be timezone-aware (e.g. datetime.now(UTC))")
        self.delay = delay
        self.at = at
        self.charge = charge
        when = f"in {delay:g} s" if delay is not None else f"at {at}" if at is not None else "now"
        super().__init__(message or f"the job asked to run again {when}")

    def due(self, now: float) -> float:
        """When the next attempt is due, as epoch seconds."""
        if self.at is not None:
            return self.at.timestamp() if isinstance(self.at, datetime) else float(self.at)
        return now + (self.delay or 0.0)


class WorkerProcessDied(JobFailure):
    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode
        super().__init__(f"the worker process running the job exited with code {exitcode}")


class JobImportError(JobFailure):
    """A job process could not import the module that defines the job.

    The job's own code never ran: the worker's environment is at fault (the module is
    not on the job process's ``sys.path``, a package it imports is missing, the
    working directory differs), so fixing the job will not help.
    """

    def __init__(self, module: str, job: str, cause: BaseException) -> None:
        self.module = module
        self.job = job
        super().__init__(
            f"the job process could not import module {module!r}, which defines job "
            f"{job!r} ({type(cause).__name__}: {cause}); this is a problem of the worker's "
            "environment (sys.path, installed packages, working directory), not an error "
            "raised by the job"
        )


class JobContractBroken(JobFailure):
    """The job's code broke a promise retrying cannot keep: the attempt fails for good."""

    permanent = True


class ResultInvalid(JobContractBroken):
    def __init__(self, job: str, annotation: str, problems: str) -> None:
        self.job = job
        super().__init__(
            f"job {job!r} returned a result that does not match its return annotation "
            f"{annotation}: {problems}"
        )


class LimitExceeded(JobContractBroken):
    def __init__(self, what: str, size: int, setting: str, limit: int) -> None:
        self.what = what
        self.size = size
        self.setting = setting
        self.limit = limit
        super().__init__(
            f"{what} is {size:,} bytes as JSON, over the limit of {limit:,} bytes ({setting})"
        )
