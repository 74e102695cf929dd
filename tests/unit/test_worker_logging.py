"""Every outcome of an attempt is one log line with the job's id, name and attempt.

What an operator reading the worker's log, or a log pipeline reading the records'
structured extras, can rely on: a success at DEBUG, a failed attempt that will be
retried at WARNING, a failure that ends the job at ERROR, a cancel at INFO, and no
traceback above DEBUG. A process job whose module its job process cannot import says
which module and that the environment, not the job, is at fault.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobwire import JobFailed, State
from tests.support.waiting import first_event
from tests.unit.conftest import FAST, AppFactory


def worker_records(caplog: pytest.LogCaptureFixture, job_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "jobwire.worker" and getattr(r, "job_id", None) == job_id
    ]


def no_traceback_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        if record.levelno > logging.DEBUG and record.name.startswith("jobwire"):
            assert record.exc_info is None, record.getMessage()
            assert "Traceback" not in record.getMessage(), record.getMessage()


async def test_a_success_is_logged_at_debug_with_the_job_id_name_and_attempt(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="jobwire")
    app = make_app("add")
    async with app.lifespan():
        handle = await app.enqueue("add", {"a": 1, "b": 2})
        assert await handle.result(timeout=30) == 3

    [record] = worker_records(caplog, handle.id)
    assert record.levelno == logging.DEBUG
    assert (record.job, record.attempt) == ("add", 1)  # type: ignore[attr-defined]
    assert f"job {handle.id} (add) attempt 1/1 succeeded" in record.getMessage()


async def test_each_failed_attempt_is_one_warning_then_the_final_failure_one_error(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobwire")
    app = make_app("always_fails")
    async with app.lifespan():
        handle = await app.enqueue("always_fails", {"message": "the disk is full"})
        with pytest.raises(JobFailed):
            await handle.result(timeout=30)

    records = worker_records(caplog, handle.id)
    assert [(r.levelno, r.attempt) for r in records] == [  # type: ignore[attr-defined]
        (logging.WARNING, 1),
        (logging.ERROR, 2),
    ]
    for record in records:
        assert record.job == "always_fails"  # type: ignore[attr-defined]
        assert record.error_type == "ValueError"  # type: ignore[attr-defined]
        assert record.error_message == "the disk is full"  # type: ignore[attr-defined]
        assert "ValueError: the disk is full" in record.getMessage()
    assert "retrying in" in records[0].getMessage()
    assert "the job has failed" in records[1].getMessage()
    no_traceback_above_debug(caplog)


async def test_the_traceback_of_a_failed_attempt_is_logged_at_debug_only(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="jobwire")
    app = make_app("always_fails")
    async with app.lifespan():
        handle = await app.enqueue("always_fails", {"message": "the disk is full"})
        with pytest.raises(JobFailed):
            await handle.result(timeout=30)

    stacks = [r for r in worker_records(caplog, handle.id) if "Traceback" in r.getMessage()]
    assert len(stacks) == 2 and all(r.levelno == logging.DEBUG for r in stacks)
    assert "raise ValueError(message)" in stacks[0].getMessage()


async def test_a_timeout_is_logged_as_a_failed_attempt_of_type_job_timeout(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobwire")
    app = make_app("sleep_past_timeout")
    async with app.lifespan():
        handle = await app.enqueue("sleep_past_timeout", {"seconds": 30})
        job = await app.wait(handle.id, timeout=30)

    assert job.state is State.FAILED
    [record] = worker_records(caplog, handle.id)
    assert record.levelno == logging.ERROR
    assert record.error_type == "JobTimeout"  # type: ignore[attr-defined]
    assert "JobTimeout: attempt exceeded its timeout of 0.5 s" in record.getMessage()


async def test_a_cancelled_attempt_is_logged_at_info(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobwire")
    app = make_app("waits_for_cancel")
    async with app.lifespan():
        handle = await app.enqueue("waits_for_cancel")
        await first_event(app, handle.id, lambda e: e.type.value == "started")
        await app.cancel(handle.id)
        job = await app.wait(handle.id, timeout=30)

    assert job.state is State.CANCELLED
    [record] = worker_records(caplog, handle.id)
    assert record.levelno == logging.INFO
    assert f"job {handle.id} (waits_for_cancel) attempt 1/1 cancelled" == record.getMessage()


VANISHING = """
from jobwire import Jobwire

jobs = Jobwire()


@jobs.job
def vanishing(n: int) -> int:
    return n
"""


@pytest.fixture
def module_gone_from_disk(tmp_path: Path) -> Iterator[str]:
    """A module the worker imported, whose file is gone before its job processes start:
    they cannot import it (as when the worker's environment differs from theirs)."""
    name = f"jobwire_vanishing_{tmp_path.name.replace('-', '_')}"
    source = tmp_path / "modules" / f"{name}.py"
    source.parent.mkdir()
    source.write_text(VANISHING)
    sys.path.insert(0, str(source.parent))
    try:
        importlib.import_module(name)
        source.unlink()
        importlib.invalidate_caches()
        yield name
    finally:
        sys.path.remove(str(source.parent))
        sys.modules.pop(name, None)


async def test_a_job_process_that_cannot_import_the_job_module_says_so(
    module_gone_from_disk: str, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobwire")
    module = sys.modules[module_gone_from_disk]
    app = module.jobs.using(sqlite_url, **FAST)
    async with app.lifespan():
        handle = await app.enqueue("vanishing", {"n": 3})
        job = await app.wait(handle.id, timeout=30)

    assert job.state is State.FAILED and job.error is not None
    assert job.error["type"] == "JobImportError"
    message = job.error["message"]
    assert f"could not import module {module_gone_from_disk!r}" in message
    assert "environment" in message and "not an error raised by the job" in message
    [record] = worker_records(caplog, handle.id)
    assert record.error_type == "JobImportError"  # type: ignore[attr-defined]
    assert module_gone_from_disk in record.getMessage()
