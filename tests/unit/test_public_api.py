"""The public surface: exactly these names, each importable from ``jobwire``."""

from __future__ import annotations

import jobwire
from jobwire import errors

PUBLIC = {
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
    # workflows
    "InvalidWorkflow",
    "Signature",
    "Step",
    "WorkflowEnded",
    "WorkflowInfo",
    "WorkflowNotFound",
    "chain",
    "group",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(jobwire.__all__) == PUBLIC
    assert len(jobwire.__all__) == len(PUBLIC), "a name is listed twice"


def test_every_public_name_is_importable_from_the_package() -> None:
    for name in jobwire.__all__:
        assert hasattr(jobwire, name), name


def test_public_classes_say_they_belong_to_jobwire() -> None:
    for name in jobwire.__all__:
        value = getattr(jobwire, name)
        if isinstance(value, type):
            assert value.__module__.startswith("jobwire."), (name, value.__module__)


def test_every_exception_jobwire_defines_is_public_and_a_jobwire_error() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    }
    assert defined <= set(jobwire.__all__)
    assert all(issubclass(getattr(errors, name), jobwire.JobwireError) for name in defined)
