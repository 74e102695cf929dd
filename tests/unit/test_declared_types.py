"""What a job's signature declares holds: arguments are refused at submit, naming the
field; a result that does not match the return annotation fails the attempt for good."""

from __future__ import annotations

import pytest

from jobwire import InvalidArguments, JobwireError, State
from jobwire.store.base import ListQuery
from tests.support import jobs as support
from tests.support.waiting import event_types
from tests.unit.conftest import AppFactory

VALID = {"n": 5, "points": [{"x": 1}]}


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        ({"n": 0, "points": []}, "n", "greater than or equal to 1"),
        ({"n": 101, "points": []}, "n", "less than or equal to 100"),
        ({**VALID, "count": 5}, "count", "less than 5"),
        ({**VALID, "mode": "turbo"}, "mode", "'fast' or 'slow'"),
        ({"n": 5, "points": [{"x": 1}, {"x": -1}]}, "points.1.x", "greater than or equal to 0"),
        ({"n": 5, "points": [{"y": 1}]}, "points.0.x", "Field required"),
    ],
)
async def test_the_python_api_refuses_arguments_breaking_a_declared_constraint(
    make_app: AppFactory, arguments: dict[str, object], field: str, message: str
) -> None:
    app = make_app("constrained", embedded_workers=False)
    async with app:
        with pytest.raises(InvalidArguments) as caught:
            await app.enqueue("constrained", arguments)
        assert (await app.store.list(ListQuery())).items == [], "nothing was stored"
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, JobwireError)
    assert f"{field}: " in str(error) and message in str(error)
    assert ".".join(str(p) for p in error.errors[0]["loc"]) == field


async def test_the_job_functions_own_enqueue_refuses_them_before_touching_the_store() -> None:
    with pytest.raises(InvalidArguments, match=r"n: Input should be less than or equal to 100"):
        await support.constrained.enqueue(n=1000, points=[])


async def test_valid_arguments_are_stored_as_json_with_their_defaults(
    make_app: AppFactory,
) -> None:
    app = make_app("constrained", embedded_workers=False)
    async with app:
        handle = await app.enqueue("constrained", VALID)
    assert handle.job.args == {"n": 5, "points": [{"x": 1, "y": 0}], "count": 0, "mode": "fast"}


RETURNS_POINT = ["returns_point_async", "returns_point_thread", "returns_point_process"]


@pytest.mark.parametrize("name", RETURNS_POINT)
async def test_a_result_matching_the_return_annotation_is_kept_as_its_json(
    make_app: AppFactory, name: str
) -> None:
    app = make_app(name)
    async with app.lifespan():
        handle = await app.enqueue(name, {"value": {"x": 3}})
        point = await handle.result(timeout=30)
    assert handle.job.result == {"x": 3, "y": 0}
    assert (point.x, point.y) == (3, 0)


@pytest.mark.parametrize("name", RETURNS_POINT)
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"x": -1}, "x: Input should be greater than or equal to 0 (got -1)"),
        ("a point", "Input should be a valid dictionary or instance of Point"),
        (None, "Input should be a valid dictionary or instance of Point"),
    ],
)
async def test_a_result_not_matching_the_return_annotation_fails_the_job_without_a_retry(
    make_app: AppFactory, name: str, value: object, problem: str
) -> None:
    app = make_app(name)
    async with app.lifespan():
        handle = await app.enqueue(name, {"value": value})
        job = await handle.wait(timeout=30)
        types = await event_types(app, job.id)

    assert (job.state, job.attempts, job.max_attempts) == (State.FAILED, 1, 3)
    assert types == ["queued", "started", "failed"]
    assert job.error is not None and job.error["type"] == "ResultInvalid"
    assert "does not match its return annotation Point" in job.error["message"]
    assert problem in job.error["message"]
