"""jobwire: durable long-running jobs for FastAPI."""

from jobwire.app import JobHandle, Jobwire
from jobwire.context import JobContext
from jobwire.errors import (
    AlreadyTerminal,
    ConfigError,
    HTTPError,
    IdempotencyConflict,
    IdempotencyInProgress,
    InvalidArguments,
    InvalidTransition,
    JobCancelled,
    JobContractBroken,
    JobDefinitionError,
    JobFailed,
    JobFailure,
    JobImportError,
    JobNotFound,
    JobTimeout,
    JobwireError,
    LimitExceeded,
    ResultInvalid,
    Retry,
    ScheduleNotFound,
    SoftTimeLimit,
    StaleClaim,
    StoreUnavailable,
    TooManyRequests,
    Unauthorized,
    UnknownJobError,
    WorkerProcessDied,
)
from jobwire.jobs import JobSpec
from jobwire.model import Event, EventType, Job, Progress, State
from jobwire.retry import Backoff
from jobwire.schedules import Schedule
from jobwire.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AlreadyTerminal",
    "Backoff",
    "ConfigError",
    "Event",
    "EventType",
    "HTTPError",
    "IdempotencyConflict",
    "IdempotencyInProgress",
    "InvalidArguments",
    "InvalidTransition",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobContractBroken",
    "JobDefinitionError",
    "JobFailed",
    "JobFailure",
    "JobHandle",
    "JobImportError",
    "JobNotFound",
    "JobSpec",
    "JobTimeout",
    "Jobwire",
    "JobwireError",
    "LimitExceeded",
    "Progress",
    "ResultInvalid",
    "Retry",
    "Schedule",
    "ScheduleNotFound",
    "Settings",
    "SoftTimeLimit",
    "StaleClaim",
    "State",
    "StoreUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnknownJobError",
    "WorkerProcessDied",
    "__version__",
]
