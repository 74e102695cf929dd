"""``@jobs.job`` → :class:`JobSpec`: name, executor, retries, timeout, and the
argument and result models."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

from jobwire.context import JobContext
from jobwire.errors import InvalidArguments, JobDefinitionError, ResultInvalid
from jobwire.retry import Backoff
from jobwire.throttle import Limit, check_concurrency, job_key, make_limit, parse_rate
from jobwire.workflows import Signature

if TYPE_CHECKING:
    from jobwire.app import JobHandle, Jobwire

P = ParamSpec("P")
R = TypeVar("R")

Executor = Literal["async", "thread", "process"]
EXECUTORS: tuple[Executor, ...] = ("async", "thread", "process")

# Keyword names that ``enqueue`` takes as options rather than job arguments.
ENQUEUE_OPTIONS = frozenset(
    {
        "delay",
        "run_at",
        "priority",
        "queue",
        "idempotency_key",
        "owner",
        "expires_in",
        "expires_at",
    }
)

ExceptionTypes = tuple[type[BaseException], ...]


class ArgsModel(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)


@dataclass(frozen=True, slots=True)
class JobOptions:
    executor: Executor
    retries: int
    backoff: Backoff
    timeout: float | None
    queue: str
    priority: int
    log_events: bool
    max_crashes: int | None = None  # None: JOBWIRE_MAX_CRASHES
    retry_on: ExceptionTypes | None = None  # None: every error retries while retries remain
    fail_on: ExceptionTypes = ()  # these fail the job at once; they win over retry_on
    soft_timeout: float | None = None
    expires: float | None = None  # seconds after submit after which it must not start
    rate_limit: tuple[int, float] | None = None  # (starts, per seconds), every worker together
    concurrency: int | None = None  # running at once, every worker together

    def limit(self, name: str) -> Limit | None:
        """The job name's rate limit, held through the store (None: unlimited)."""
        return make_limit(job_key(name), self.rate_limit, self.concurrency)

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def retries_error(self, exc: BaseException) -> bool:
        """Whether an attempt that raised ``exc`` may be retried (while retries remain):
        ``fail_on`` wins over ``retry_on``; without ``retry_on`` every error may."""
        if self.fail_on and isinstance(exc, self.fail_on):
            return False
        return self.retry_on is None or isinstance(exc, self.retry_on)


class JobSpec(Generic[P, R]):
    """A registered job. Call it to run the function directly; ``enqueue`` to run it durably."""

    def __init__(
        self,
        app: Jobwire,
        fn: Callable[..., Any],
        name: str,
        options: JobOptions,
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        self.takes_context, self.parameters = _job_parameters(fn)
        self.args_model = _args_model(fn, name, self.parameters)
        self.result_annotation = _result_annotation(fn)
        self.result_adapter: TypeAdapter[Any] = TypeAdapter(self.result_annotation)
        self._result_any = self.result_annotation is Any
        self.module = fn.__module__
        self.qualname = fn.__qualname__
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)
        self.__wrapped__ = fn
        if options.executor == "process":
            _require_importable(fn)
        if options.executor == "async" and not self.is_async:
            raise JobDefinitionError(
                f"job {name!r}: executor='async' needs an 'async def' function"
            )
        if options.executor != "async" and self.is_async:
            raise JobDefinitionError(
                f"job {name!r}: an 'async def' job runs on the worker's loop; "
                f"executor={options.executor!r} needs a plain 'def' function"
            )

    def __repr__(self) -> str:
        return f"<JobSpec {self.name} executor={self.options.executor} queue={self.options.queue}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    # -- arguments and results as JSON ---------------------------------------------------

    def bind_arguments(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Positional and keyword arguments of a Python call → a name → value mapping."""
        if not args:
            return dict(kwargs)
        names = [p.name for p in self.parameters]
        if len(args) > len(names):
            raise TypeError(
                f"{self.name}() takes {len(names)} arguments but {len(args)} were given"
            )
        bound = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key in bound:
                raise TypeError(f"{self.name}() got multiple values for argument {key!r}")
            bound[key] = value
        return bound

    def dump_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validate arguments and return them as JSON; raises pydantic.ValidationError."""
        model = self.args_model.model_validate(dict(arguments))
        dumped: dict[str, Any] = model.model_dump(mode="json")
        return dumped

    def load_arguments(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """Stored JSON arguments → the Python values the function is called with."""
        if not self.parameters and not stored:
            return {}
        model = self.args_model.model_validate(dict(stored))
        return {p.name: getattr(model, p.name) for p in self.parameters}

    def dump_result(self, value: Any) -> Any:
        """The function's return value, checked against its return annotation, as JSON;
        raises ResultInvalid when it does not match (a bug retrying cannot fix)."""
        if self._result_any:
            if value is None:
                return None  # JSON as it is; nothing to convert or check
        else:
            try:
                value = self.result_adapter.validate_python(value)
            except pydantic.ValidationError as exc:
                raise ResultInvalid(
                    self.name, _type_name(self.result_annotation), _problems(exc)
                ) from None
        dumped = self.result_adapter.dump_python(value, mode="json")
        json.dumps(dumped)  # a result that cannot travel as JSON fails this attempt here
        return dumped

    def check_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """``dump_arguments`` for the Python API: raises InvalidArguments naming the fields."""
        try:
            return self.dump_arguments(arguments)
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False)
            raise InvalidArguments(self.name, [dict(e) for e in errors]) from None

    # -- enqueueing ----------------------------------------------------------------------

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """Submit durably; keyword options ``delay``, ``run_at``, ``priority``, ``queue``,
        ``idempotency_key``, ``owner``, ``expires_in`` and ``expires_at`` are taken as
        options, the rest as arguments."""
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in ENQUEUE_OPTIONS}
        arguments = self.bind_arguments(args, kwargs)
        return await self.app.enqueue(self, arguments, **options)  # type: ignore[arg-type]

    # -- workflow steps ------------------------------------------------------------------

    def s(self, **arguments: Any) -> Signature:
        """A workflow step of this job that receives the previous step's result in its
        ``previous`` argument (``.into(name)`` for another); see :mod:`jobwire.workflows`."""
        return Signature(self.name, arguments)

    def si(self, **arguments: Any) -> Signature:
        """A workflow step of this job that receives nothing from the steps before it."""
        return Signature(self.name, arguments, receive=None)

    def with_options(self, **options: Any) -> _BoundEnqueue[P, R]:
        """``crunch.with_options(delay=5).enqueue(n=10)``: options separate from arguments."""
        unknown = set(options) - ENQUEUE_OPTIONS
        if unknown:
            raise TypeError(f"unknown enqueue options: {', '.join(sorted(unknown))}")
        return _BoundEnqueue(self, options)


class _BoundEnqueue(Generic[P, R]):
    def __init__(self, spec: JobSpec[P, R], options: dict[str, Any]) -> None:
        self._spec = spec
        self._options = options

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        arguments = self._spec.bind_arguments(args, kwargs)
        return await self._spec.app.enqueue(self._spec, arguments, **self._options)


# -- building the models ----------------------------------------------------------------


def _job_parameters(fn: Callable[..., Any]) -> tuple[bool, list[inspect.Parameter]]:
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    takes_context = False
    if params:
        first = params[0]
        hints = _type_hints(fn)
        if first.name == "ctx" or hints.get(first.name) is JobContext:
            takes_context = True
            params = params[1:]
    for p in params:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            star = "*" if p.kind is inspect.Parameter.VAR_POSITIONAL else "**"
            raise JobDefinitionError(
                f"job {fn.__qualname__}: parameter {star}{p.name} cannot be expressed as "
                "JSON arguments; name each argument"
            )
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise JobDefinitionError(
                f"job {fn.__qualname__}: parameter {p.name!r} is positional-only, but job "
                "arguments are passed by name; remove the '/'"
            )
        if p.name in ENQUEUE_OPTIONS:
            raise JobDefinitionError(
                f"job {fn.__qualname__}: parameter {p.name!r} is reserved for enqueue options "
                f"({', '.join(sorted(ENQUEUE_OPTIONS))}); rename it"
            )
    return takes_context, params


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        # include_extras: without it Annotated[int, Field(ge=1)] (and conint, constr…)
        # would lose its constraints here, and neither checks nor schemas would show them.
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise JobDefinitionError(
            f"job {fn.__qualname__}: cannot resolve its type annotations: {exc}"
        ) from exc


def _args_model(
    fn: Callable[..., Any], name: str, params: list[inspect.Parameter]
) -> type[ArgsModel]:
    hints = _type_hints(fn)
    fields: dict[str, Any] = {}
    for p in params:
        annotation = hints.get(p.name, Any)
        _require_json(fn, f"parameter {p.name!r}", annotation)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, default)
    model_name = "".join(part.capitalize() for part in name.replace("-", "_").split("_")) + "Args"
    try:
        return create_model(model_name, __base__=ArgsModel, **fields)
    except (pydantic.PydanticSchemaGenerationError, TypeError, NameError) as exc:
        raise JobDefinitionError(f"job {fn.__qualname__}: {exc}") from exc


def _result_annotation(fn: Callable[..., Any]) -> Any:
    hints = _type_hints(fn)
    annotation = hints.get("return", Any)
    origin = typing.get_origin(annotation)
    if origin in (Awaitable, typing.Coroutine) or annotation is type(None):
        annotation = Any if annotation is not type(None) else type(None)
    _require_json(fn, "its return value", annotation)
    return annotation


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def _problems(exc: pydantic.ValidationError) -> str:
    """Pydantic's errors as ``where: message (got value)``, ``;``-separated."""
    lines = []
    for error in exc.errors(include_url=False, include_context=False):
        where = ".".join(str(part) for part in error["loc"]) or "result"
        got = repr(error.get("input"))
        if len(got) > 80:
            got = got[:77] + "..."
        lines.append(f"{where}: {error['msg']} (got {got})")
    return "; ".join(lines)


def _require_json(fn: Callable[..., Any], what: str, annotation: Any) -> None:
    try:
        TypeAdapter(annotation).json_schema(mode="serialization")
        TypeAdapter(annotation).json_schema(mode="validation")
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticInvalidForJsonSchema) as exc:
        type_name = getattr(annotation, "__name__", repr(annotation))
        raise JobDefinitionError(
            f"job {fn.__qualname__}: {what} has type {type_name}, which cannot be expressed "
            "in JSON (arguments and results travel as JSON, never pickle): "
            f"{exc.__class__.__name__}"
        ) from exc


def _require_importable(fn: Callable[..., Any]) -> None:
    if "<locals>" in fn.__qualname__ or "<lambda>" in fn.__qualname__:
        raise JobDefinitionError(
            f"job {fn.__qualname__}: a process job must be a module-level function so the "
            "worker process can import it; define it at module level or use executor='thread'"
        )


def build_options(
    fn: Callable[..., Any],
    *,
    executor: Executor | None,
    retries: int,
    backoff: Backoff | float | None,
    timeout: float | None,
    queue: str,
    priority: int,
    log_events: bool,
    max_crashes: int | None = None,
    retry_on: type[BaseException] | ExceptionTypes | None = None,
    fail_on: type[BaseException] | ExceptionTypes = (),
    soft_timeout: float | None = None,
    expires: float | None = None,
    rate_limit: str | tuple[int, float] | None = None,
    concurrency: int | None = None,
) -> JobOptions:
    where = f"job {getattr(fn, '__qualname__', fn)!r}"
    if executor is None:
        executor = "async" if inspect.iscoroutinefunction(fn) else "process"
    if executor not in EXECUTORS:
        raise JobDefinitionError(f"{where}: executor must be one of {EXECUTORS}, got {executor!r}")
    if not isinstance(retries, int) or retries < 0:
        raise JobDefinitionError(f"{where}: retries must be an integer >= 0, got {retries!r}")
    if timeout is not None and timeout <= 0:
        raise JobDefinitionError(f"{where}: timeout must be > 0 seconds, got {timeout!r}")
    if not queue or not isinstance(queue, str):
        raise JobDefinitionError(f"{where}: queue must be a non-empty string, got {queue!r}")
    if max_crashes is not None and (
        not isinstance(max_crashes, int) or isinstance(max_crashes, bool) or max_crashes < 1
    ):
        raise JobDefinitionError(
            f"{where}: max_crashes must be an integer >= 1, got {max_crashes!r}"
        )
    retry_types = None if retry_on is None else _exception_types(where, "retry_on", retry_on)
    fail_types = _exception_types(where, "fail_on", fail_on)
    if soft_timeout is not None:
        if isinstance(soft_timeout, bool) or not isinstance(soft_timeout, int | float):
            raise JobDefinitionError(
                f"{where}: soft_timeout must be a number of seconds, got {soft_timeout!r}"
            )
        if soft_timeout <= 0:
            raise JobDefinitionError(
                f"{where}: soft_timeout must be > 0 seconds, got {soft_timeout!r}"
            )
        if timeout is not None and soft_timeout >= timeout:
            raise JobDefinitionError(
                f"{where}: soft_timeout ({soft_timeout:g} s) must be shorter than timeout "
                f"({timeout:g} s): it warns the job before the hard timeout stops it"
            )
    if expires is not None and (
        isinstance(expires, bool) or not isinstance(expires, int | float) or expires <= 0
    ):
        raise JobDefinitionError(f"{where}: expires must be > 0 seconds, got {expires!r}")
    if isinstance(backoff, int | float):
        backoff = Backoff(base=float(backoff), cap=max(300.0, float(backoff)))
    return JobOptions(
        executor=executor,
        retries=retries,
        backoff=backoff or Backoff(),
        timeout=timeout,
        queue=queue,
        priority=priority,
        log_events=log_events,
        max_crashes=max_crashes,
        retry_on=retry_types,
        fail_on=fail_types,
        soft_timeout=None if soft_timeout is None else float(soft_timeout),
        rate_limit=parse_rate(where, rate_limit, "rate_limit"),
        concurrency=check_concurrency(where, concurrency),
        expires=None if expires is None else float(expires),
    )


def _exception_types(
    where: str, option: str, value: type[BaseException] | ExceptionTypes
) -> ExceptionTypes:
    types = (value,) if isinstance(value, type) else value
    if not isinstance(types, tuple) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in types
    ):
        raise JobDefinitionError(
            f"{where}: {option} must be an exception class or a tuple of them, got {value!r}"
        )
    return types
