"""Sizes are bounded, with every executor: a result or an output over its limit fails
the attempt for good, naming the setting and the size; a progress message or an
error's traceback is cut to fit."""

from __future__ import annotations

import pytest

from jobwire import EventType, State
from jobwire.limits import json_size
from tests.support.waiting import event_types
from tests.unit.conftest import AppFactory

OVERSIZE = ["oversize_async", "oversize_thread", "oversize_process"]
LIMITS = {
    "max_result_bytes": 2_000,
    "max_output_bytes": 1_000,
    "max_progress_message_bytes": 100,
    "max_traceback_bytes": 600,
}


@pytest.mark.parametrize("name", OVERSIZE)
async def test_a_result_over_its_limit_fails_the_job_naming_the_setting_and_size(
    make_app: AppFactory, name: str
) -> None:
    app = make_app(name, **LIMITS)
    async with app.lifespan():
        fits = await app.enqueue(name, {"what": "result", "size": 1_998})
        assert await fits.result(timeout=30) == "x" * 1_998  # 2,000 bytes as JSON: allowed
        handle = await app.enqueue(name, {"what": "result", "size": 1_999})
        job = await handle.wait(timeout=30)
        types = await event_types(app, job.id)

    assert (job.state, job.attempts, job.max_attempts) == (State.FAILED, 1, 3)
    assert types == ["queued", "started", "failed"]
    assert job.error is not None and job.error["type"] == "LimitExceeded"
    assert job.error["message"] == (
        "the result is 2,001 bytes as JSON, over the limit of 2,000 bytes "
        "(JOBWIRE_MAX_RESULT_BYTES)"
    )
    assert job.result is None


@pytest.mark.parametrize("name", OVERSIZE)
@pytest.mark.parametrize("what", ["output", "caught_output"])
async def test_an_output_over_its_limit_fails_the_job_even_when_the_job_catches_the_error(
    make_app: AppFactory, name: str, what: str
) -> None:
    app = make_app(name, **LIMITS)
    async with app.lifespan():
        handle = await app.enqueue(name, {"what": what, "size": 1_000})
        job = await handle.wait(timeout=30)
        events = await app.store.events(job.id)

    assert (job.state, job.attempts) == (State.FAILED, 1)
    assert job.error is not None and job.error["type"] == "LimitExceeded"
    assert job.error["message"] == (
        "an output is 1,002 bytes as JSON, over the limit of 1,000 bytes (JOBWIRE_MAX_OUTPUT_BYTES)"
    )
    outputs = [e.data["output"] for e in events if e.type is EventType.OUTPUT]
    assert all(json_size(output) <= 1_000 for output in outputs), "an oversized output was kept"
    assert [e.type.value for e in events][-1] == "failed"
    if what == "output":
        assert "ctx.output(text)" in job.error["traceback"], "the traceback shows the call"


@pytest.mark.parametrize("name", OVERSIZE)
async def test_a_progress_message_over_its_limit_is_cut_to_fit(
    make_app: AppFactory, name: str
) -> None:
    app = make_app(name, **LIMITS)
    async with app.lifespan():
        handle = await app.enqueue(name, {"what": "message", "size": 5_000})
        assert await handle.result(timeout=30) == "done"
        events = await app.store.events(handle.id)

    [progress] = [e.data for e in events if e.type is EventType.PROGRESS]
    message = progress["message"]
    assert message.startswith("x" * 90) and message.endswith("…")
    assert len(message.encode()) <= 100
    assert handle.job.progress is not None and handle.job.progress.message == message


@pytest.mark.parametrize("name", OVERSIZE)
async def test_an_error_over_the_traceback_limit_is_cut_keeping_the_end_and_still_retried(
    make_app: AppFactory, name: str
) -> None:
    app = make_app(name, **LIMITS)
    async with app.lifespan():
        handle = await app.enqueue(name, {"what": "error", "size": 10_000})
        job = await handle.wait(timeout=30)

    assert (job.state, job.attempts) == (State.FAILED, 3), "an ordinary error is retried"
    assert job.error is not None and job.error["type"] == "ValueError"
    traceback = job.error["traceback"]
    assert len(traceback.encode()) <= 600
    assert traceback.startswith("…[") and "bytes cut]" in traceback
    assert traceback.rstrip().endswith("the end of the message")
    assert len(job.error["message"].encode()) <= 600
    assert job.error["message"].startswith("xxx")


def test_the_limits_are_settings_with_sensible_defaults() -> None:
    from jobwire import Settings

    settings = Settings.from_env(
        {"JOBWIRE_MAX_RESULT_BYTES": "10", "JOBWIRE_MAX_PROGRESS_MESSAGE_BYTES": "20"}
    )
    assert (settings.max_result_bytes, settings.max_progress_message_bytes) == (10, 20)
    defaults = Settings()
    assert defaults.max_result_bytes == 1_048_576
    assert defaults.max_output_bytes == 262_144
    assert defaults.max_progress_message_bytes == 4_096
    assert defaults.max_traceback_bytes == 16_384
