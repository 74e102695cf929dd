"""How rate limits are declared: on a job (``rate_limit=``, ``concurrency=``) and on a
queue (``jobs.limit_queue``), with clear errors for what cannot be a limit."""

from __future__ import annotations

import pytest

from jobwire import JobContext, Jobwire
from jobwire.errors import JobDefinitionError
from jobwire.throttle import Limit, parse_rate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/s", (10, 1.0)),
        ("100/m", (100, 60.0)),
        ("5/2s", (5, 2.0)),
        ("1000/h", (1000, 3600.0)),
        (" 1 / d ", (1, 86400.0)),
        ((3, 0.5), (3, 0.5)),
    ],
)
def test_a_rate_is_a_count_per_period(text: str | tuple[int, float], expected: object) -> None:
    assert parse_rate("job 'x'", text) == expected


@pytest.mark.parametrize("bad", ["10", "ten/s", "10/w", "0/s", "-1/s", (0, 1.0), (5, 0), (5,)])
def test_what_is_not_a_rate_is_refused_naming_the_option(bad: object) -> None:
    jobs = Jobwire("memory://")
    with pytest.raises(JobDefinitionError, match="rate_limit"):

        @jobs.job(rate_limit=bad)  # type: ignore[arg-type]
        async def send(ctx: JobContext) -> None: ...


def test_a_job_and_a_queue_declare_their_limits() -> None:
    jobs = Jobwire("memory://")

    @jobs.job(rate_limit="10/s", concurrency=2, queue="emails")
    async def send(ctx: JobContext) -> None: ...

    jobs.limit_queue("emails", rate="100/m", concurrency=5)
    assert send.options.limit("send") == Limit("job:send", rate=10, period=1.0, concurrency=2)
    assert jobs.queue_limits["emails"] == Limit("queue:emails", 100, 60.0, 5)
    assert jobs.using("memory://").queue_limits == jobs.queue_limits


def test_a_job_without_limits_has_none() -> None:
    jobs = Jobwire("memory://")

    @jobs.job
    async def free(ctx: JobContext) -> None: ...

    assert free.options.limit("free") is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_a_concurrency_that_is_not_a_positive_integer_is_refused(bad: object) -> None:
    jobs = Jobwire("memory://")
    with pytest.raises(JobDefinitionError, match="concurrency must be an integer >= 1"):

        @jobs.job(concurrency=bad)  # type: ignore[arg-type]
        async def send(ctx: JobContext) -> None: ...

    with pytest.raises(JobDefinitionError, match="concurrency must be an integer >= 1"):
        jobs.limit_queue("emails", concurrency=bad)  # type: ignore[arg-type]


def test_a_queue_limit_needs_a_rate_or_a_concurrency() -> None:
    with pytest.raises(JobDefinitionError, match="needs rate= or concurrency="):
        Jobwire("memory://").limit_queue("emails")
