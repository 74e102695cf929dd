"""``@jobs.job``: what it builds from a function, and what it refuses at decoration time."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pydantic
import pytest

from jobwire import Backoff, JobContext, JobDefinitionError, JobSpec, Jobwire


@pytest.fixture
def jobs() -> Jobwire:
    return Jobwire("memory://")


# Module level, so that they may become process jobs.


def crunch(ctx: JobContext, n: int, scale: float = 1.0, label: str | None = None) -> int:
    """Squares and scales."""
    return int(n * n * scale)


def no_context(items: list[int]) -> dict[str, int]:
    return {"total": sum(items)}


async def fetch(ctx: JobContext, urls: list[str]) -> list[str]:
    return urls


def positional_only(n: int, /) -> int:
    return n


# -- what it builds --------------------------------------------------------------------------


def test_the_bare_decorator_registers_a_plain_def_as_a_process_job_with_defaults(
    jobs: Jobwire,
) -> None:
    spec = jobs.job(crunch)
    assert isinstance(spec, JobSpec)
    assert jobs.registry == {"crunch": spec}
    assert spec.name == "crunch"
    assert spec.options.executor == "process"
    assert (spec.options.retries, spec.options.max_attempts) == (0, 1)
    assert spec.options.timeout is None
    assert (spec.options.queue, spec.options.priority) == ("default", 0)
    assert spec.takes_context
    assert spec.__doc__ == "Squares and scales."


def test_an_async_def_defaults_to_the_async_executor(jobs: Jobwire) -> None:
    assert jobs.job(fetch).options.executor == "async"


def test_options_given_to_the_decorator_are_kept(jobs: Jobwire) -> None:
    backoff = Backoff(base=2.0, cap=60.0)
    spec = jobs.job(
        name="crunch-hard",
        executor="thread",
        retries=3,
        backoff=backoff,
        timeout=12.5,
        queue="cpu",
        priority=7,
    )(crunch)
    assert spec.name == "crunch-hard"
    assert jobs.registry == {"crunch-hard": spec}
    options = spec.options
    assert (options.executor, options.retries, options.max_attempts) == ("thread", 3, 4)
    assert (options.backoff, options.timeout) == (backoff, 12.5)
    assert (options.queue, options.priority) == ("cpu", 7)


def test_a_number_as_backoff_is_the_base_delay(jobs: Jobwire) -> None:
    spec = jobs.job(backoff=5)(no_context)
    assert spec.options.backoff.base == 5.0
    assert spec.options.backoff.cap >= 5.0


def test_the_arguments_model_follows_the_signature_without_the_context(jobs: Jobwire) -> None:
    spec = jobs.job(crunch)
    schema = spec.args_model.model_json_schema()
    assert set(schema["properties"]) == {"n", "scale", "label"}
    assert schema["required"] == ["n"]
    assert schema["properties"]["n"]["type"] == "integer"
    assert schema["properties"]["scale"]["default"] == 1.0
    assert [p.name for p in spec.parameters] == ["n", "scale", "label"]


def test_a_job_without_a_context_parameter_gets_every_parameter_as_an_argument(
    jobs: Jobwire,
) -> None:
    spec = jobs.job(no_context)
    assert not spec.takes_context
    assert spec.dump_arguments({"items": [1, 2]}) == {"items": [1, 2]}


def test_defaults_are_filled_in_when_arguments_are_dumped(jobs: Jobwire) -> None:
    spec = jobs.job(crunch)
    assert spec.dump_arguments({"n": 3}) == {"n": 3, "scale": 1.0, "label": None}


def test_arguments_are_validated_against_the_signature(jobs: Jobwire) -> None:
    spec = jobs.job(crunch)
    with pytest.raises(pydantic.ValidationError) as wrong_type:
        spec.dump_arguments({"n": "three"})
    assert wrong_type.value.errors()[0]["loc"] == ("n",)
    with pytest.raises(pydantic.ValidationError) as missing:
        spec.dump_arguments({})
    assert missing.value.errors()[0]["type"] == "missing"
    with pytest.raises(pydantic.ValidationError) as extra:
        spec.dump_arguments({"n": 1, "colour": "red"})
    assert extra.value.errors()[0]["type"] == "extra_forbidden"


def test_stored_arguments_load_back_as_the_functions_keyword_arguments(jobs: Jobwire) -> None:
    spec = jobs.job(crunch)
    stored = spec.dump_arguments({"n": 3, "scale": 2})
    assert spec.load_arguments(stored) == {"n": 3, "scale": 2.0, "label": None}


def test_positional_arguments_of_a_python_call_bind_to_parameter_names(jobs: Jobwire) -> None:
    spec = jobs.job(crunch)
    assert spec.bind_arguments((3,), {"scale": 2.0}) == {"n": 3, "scale": 2.0}
    with pytest.raises(TypeError, match="multiple values for argument 'n'"):
        spec.bind_arguments((3,), {"n": 4})
    with pytest.raises(TypeError, match="takes 3 arguments but 4 were given"):
        spec.bind_arguments((1, 2, 3, 4), {})


def test_the_return_annotation_shapes_the_result(jobs: Jobwire) -> None:
    spec = jobs.job(no_context)
    assert spec.dump_result({"total": 3}) == {"total": 3}
    assert spec.result_adapter.validate_python({"total": "3"}) == {"total": 3}
    with pytest.raises(pydantic.ValidationError):
        spec.result_adapter.validate_python({"total": "many"})


def test_a_missing_return_annotation_accepts_any_json_result(jobs: Jobwire) -> None:
    @jobs.job
    async def anything(x: int):  # type: ignore[no-untyped-def]
        return x

    assert anything.dump_result({"a": [1, None]}) == {"a": [1, None]}


def test_calling_the_job_calls_the_function_itself(jobs: Jobwire) -> None:
    spec = jobs.job(no_context)
    assert spec(items=[1, 2, 3]) == {"total": 6}


def test_the_context_is_recognised_by_its_annotation_whatever_its_name(jobs: Jobwire) -> None:
    @jobs.job
    async def named_otherwise(context: JobContext, n: int) -> int:
        return n

    assert named_otherwise.takes_context
    assert [p.name for p in named_otherwise.parameters] == ["n"]


# -- what it refuses ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", [socket.socket, type(threading.Lock())])
def test_a_parameter_that_cannot_be_json_is_refused_naming_the_parameter(
    jobs: Jobwire, kind: type
) -> None:
    def uses(conn: Any) -> None: ...

    uses.__annotations__["conn"] = kind
    with pytest.raises(JobDefinitionError) as caught:
        jobs.job(executor="thread")(uses)
    message = str(caught.value)
    assert "parameter 'conn'" in message
    assert "cannot be expressed in JSON" in message
    assert jobs.registry == {}


def test_a_return_type_that_cannot_be_json_is_refused(jobs: Jobwire) -> None:
    with pytest.raises(JobDefinitionError, match="its return value has type socket"):

        @jobs.job(executor="thread")
        def opens(host: str) -> socket.socket:
            return socket.socket()


@pytest.mark.parametrize(
    ("source", "star"),
    [
        ("def f(*names: str) -> None: ...", "*names"),
        ("def f(**extra: int) -> None: ...", "**extra"),
    ],
)
def test_star_parameters_are_refused(jobs: Jobwire, source: str, star: str) -> None:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(JobDefinitionError, match=rf"parameter \{star}".replace("\\*", r"\*")):
        jobs.job(executor="thread")(namespace["f"])


@pytest.mark.parametrize(
    "reserved", ["delay", "run_at", "priority", "queue", "idempotency_key", "owner"]
)
def test_a_parameter_named_like_an_enqueue_option_is_refused(jobs: Jobwire, reserved: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"async def f({reserved}: int) -> None: ...", namespace)
    with pytest.raises(JobDefinitionError) as caught:
        jobs.job(namespace["f"])
    assert f"parameter {reserved!r} is reserved for enqueue options" in str(caught.value)


def test_executor_async_is_refused_for_a_plain_def(jobs: Jobwire) -> None:
    with pytest.raises(JobDefinitionError, match="executor='async' needs an 'async def' function"):
        jobs.job(executor="async")(no_context)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_an_async_def_is_refused_on_a_thread_or_process(jobs: Jobwire, executor: Any) -> None:
    with pytest.raises(JobDefinitionError, match=f"executor={executor!r} needs a plain 'def'"):
        jobs.job(executor=executor)(fetch)


def test_an_unknown_executor_is_refused(jobs: Jobwire) -> None:
    with pytest.raises(JobDefinitionError, match="executor must be one of"):
        jobs.job(executor="gpu")(no_context)  # type: ignore[arg-type]


def test_a_process_job_defined_inside_a_function_is_refused(jobs: Jobwire) -> None:
    def local(n: int) -> int:
        return n

    with pytest.raises(JobDefinitionError, match="a process job must be a module-level function"):
        jobs.job(local)
    assert jobs.registry == {}


def test_a_thread_job_may_be_defined_inside_a_function(jobs: Jobwire) -> None:
    def local(n: int) -> int:
        return n

    assert jobs.job(executor="thread")(local).options.executor == "thread"


def test_a_lambda_cannot_be_a_process_job(jobs: Jobwire) -> None:
    with pytest.raises(JobDefinitionError, match="module-level function"):
        jobs.job(name="square")(lambda n: n * n)


def test_two_jobs_with_one_name_are_refused(jobs: Jobwire) -> None:
    jobs.job(name="same")(no_context)
    with pytest.raises(JobDefinitionError, match="a job named 'same' is already registered"):
        jobs.job(name="same")(crunch)


def test_a_registered_job_cannot_be_registered_again(jobs: Jobwire) -> None:
    spec = jobs.job(no_context)
    with pytest.raises(JobDefinitionError, match="no_context is already a registered job"):
        jobs.job(name="again")(spec)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries must be an integer >= 0, got -1"),
        ({"retries": 1.5}, "retries must be an integer >= 0, got 1.5"),
        ({"timeout": 0}, "timeout must be > 0 seconds, got 0"),
        ({"queue": ""}, "queue must be a non-empty string, got ''"),
    ],
)
def test_invalid_options_are_refused_with_expected_and_actual(
    jobs: Jobwire, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(JobDefinitionError, match=message.replace(".", r"\.")):
        jobs.job(**options)(no_context)


def test_a_positional_only_parameter_is_refused_as_arguments_go_by_name(jobs: Jobwire) -> None:
    with pytest.raises(JobDefinitionError, match="parameter 'n' is positional-only"):
        jobs.job(executor="thread")(positional_only)


def test_the_context_alone_may_be_positional_only(jobs: Jobwire) -> None:
    @jobs.job
    async def tidy(ctx: JobContext, /, n: int) -> int:
        return n

    assert tidy.takes_context
    assert tidy.dump_arguments({"n": 1}) == {"n": 1}
