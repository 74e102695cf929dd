"""The HTTP contract, mounted under a prefix P: submit, get (long-poll), list, cancel,
health. Every route resolves the caller's owner and answers 404 for jobs of others."""

# No postponed annotations here: FastAPI reads these signatures at runtime, and they
# refer to values (settings, the owner dependency) local to build_router.
import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from jobwire import tracing
from jobwire.api.auth import anonymous_owner, api_key_owner, parse_api_keys
from jobwire.api.body import read_json, refuse_nul, require_json
from jobwire.api.hosts import MISDIRECTED, host_guard
from jobwire.api.problems import (
    RETRY_AFTER,
    check_schedule,
    from_validation,
    http_errors,
    invalid,
    not_found,
)
from jobwire.api.schedules import add_schedule_routes
from jobwire.api.schemas import (
    JobPage,
    JobView,
    SubmitRequest,
    job_view,
    list_item,
    submit_schema,
)
from jobwire.api.stream import JobIdPath, add_stream_routes
from jobwire.api.tokens import StreamTokens, accepting_tokens
from jobwire.api.workflows import add_workflow_routes
from jobwire.app import expiry, fingerprint_of, schedule
from jobwire.dashboard.routes import build_dashboard
from jobwire.errors import IdempotencyInProgress, JobNotFound, StoreUnavailable
from jobwire.ids import is_job_id
from jobwire.model import State
from jobwire.store.base import ListQuery
from jobwire.webhooks.options import NO_SECRET, WebhookRefused

if TYPE_CHECKING:
    from jobwire.app import Jobwire

MAX_IDEMPOTENCY_KEY = 255
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such job, or not yours"}}


def _base(request: Request, tail: str = "") -> str:
    """The path the router is mounted at, as the client addressed it."""
    path = request.url.path.rstrip("/")
    if tail and path.endswith(tail):
        path = path[: -len(tail)]
    return path


def _encode_cursor(job_id: str | None) -> str | None:
    if job_id is None:
        return None
    return base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not is_job_id(text):
        raise invalid(
            ("query", "cursor"),
            "invalid cursor; pass next_cursor from a previous page",
            value=cursor,
        )
    return text


@contextmanager
def _webhook_errors() -> Iterator[None]:
    """A refused ``webhook`` option → 422 naming the field within it."""
    try:
        yield
    except WebhookRefused as exc:
        loc = ("body", "webhook", *exc.loc)
        raise invalid(loc, str(exc), "webhook_refused", exc.value) from exc


def build_router(jobwire: "Jobwire") -> APIRouter:
    settings = jobwire.settings
    # Every route below takes the dependencies the router has when it is added.
    router = APIRouter(tags=["jobs"], dependencies=[Depends(refuse_nul)])
    if jobwire.auth is not None:
        owner_dependency: Any = jobwire.auth
    elif settings.api_keys:
        owner_dependency = api_key_owner(parse_api_keys(settings.api_keys))
    else:
        owner_dependency = anonymous_owner
    owner_param: Any = Depends(owner_dependency)
    tokens = StreamTokens.for_settings(
        settings.stream_secret,
        parse_api_keys(settings.api_keys) if settings.api_keys else {},
        settings.stream_token_seconds,
    )
    stream_owner_param: Any = Depends(accepting_tokens(owner_dependency, tokens))
    in_flight: set[tuple[str, str]] = set()

    def request_body_doc() -> dict[str, Any]:
        return {
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": submit_schema(list(jobwire.registry.values()))}
                },
            }
        }

    # Health first: "/health/live" must not be taken for a job id. Health tells nothing
    # of anyone's jobs, so probes may name the host as they like (a pod's address).

    @router.get(
        "/health/live",
        tags=["health"],
        summary="Liveness",
        responses={503: {"description": "The start-up gave up waiting for the store"}},
    )
    async def live() -> JSONResponse:
        # Up while the store is away, at start-up as at run time: restarting the process
        # would not bring the store back. Only a start-up that gave up is not alive.
        if jobwire.startup_failed is not None:
            return JSONResponse(
                {"status": "failed", "detail": f"start-up failed: {jobwire.startup_failed}"},
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return JSONResponse({"status": "ok"})

    @router.get(
        "/health/ready",
        tags=["health"],
        summary="Readiness: the store is reachable and its schema current",
        responses={503: {"description": "Not ready, with the reason"}},
    )
    async def ready() -> JSONResponse:
        try:
            await jobwire.ping()
        except StoreUnavailable as exc:
            reason = str(exc)
        except Exception as exc:  # an engine error not yet mapped still means "not ready"
            reason = repr(exc)
        else:
            return JSONResponse({"status": "ok"})
        return JSONResponse(
            {"status": "unavailable", "detail": f"the job store is unavailable: {reason}"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER},
        )

    if owner_dependency is anonymous_owner:
        # Without credentials, only the names this server answers to (api/hosts.py).
        # A router's dependencies are taken by each route as it is added: every route
        # from here on has the guard, the health routes above do not.
        router.dependencies.append(Depends(host_guard(settings.allowed_hosts)))
        router.responses[MISDIRECTED] = {"description": "A host this server does not answer"}
    add_stream_routes(router, jobwire, owner_param, stream_owner_param, tokens)
    # Before "/{job_id}": "/ui" is not a job id.
    router.include_router(build_dashboard(jobwire))

    add_schedule_routes(router, jobwire, owner_param)
    add_workflow_routes(router, jobwire, owner_param)

    @router.post(
        "",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=JobView,
        summary="Submit a job",
        openapi_extra=request_body_doc(),
        responses={
            409: {"description": "A request with this Idempotency-Key is still being processed"},
            413: {"description": "Request body too large"},
            415: {"description": "The body is not declared as application/json"},
            422: {"description": "Invalid body or arguments, unknown job, or key reused"},
        },
    )
    async def submit(
        request: Request,
        idempotency_key: Annotated[
            str | None,
            Header(alias="Idempotency-Key", min_length=1, max_length=MAX_IDEMPOTENCY_KEY),
        ] = None,
        owner: str = owner_param,
    ) -> JSONResponse:
        payload = await read_json(request, settings.max_body_bytes)
        try:
            body = SubmitRequest.model_validate(payload)
        except ValidationError as exc:
            raise from_validation(exc, ("body",)) from exc
        check_schedule(body.delay, body.run_at)
        spec = jobwire.registry.get(body.job)
        if spec is None:
            known = ", ".join(sorted(jobwire.registry)) or "(none)"
            raise invalid(
                ("body", "job"),
                f"unknown job {body.job!r}; registered jobs: {known}",
                "unknown_job",
                body.job,
            )
        try:
            arguments = spec.dump_arguments(body.args)
        except ValidationError as exc:
            raise from_validation(exc, ("body", "args")) from exc
        if body.webhook is not None and not settings.webhook_secret:
            raise invalid(("body", "webhook"), NO_SECRET, "webhooks_off")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise invalid(
                ("header", "Idempotency-Key"),
                f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters",
                value=idempotency_key,
            )
        key = (owner, idempotency_key) if idempotency_key is not None else None
        if key is not None:
            if key in in_flight:
                raise HTTPException(
                    status.HTTP_409_CONFLICT, str(IdempotencyInProgress(idempotency_key or ""))
                )
            in_flight.add(key)
        _check_expiry(body, spec.options.expires, payload)
        try:
            with http_errors(), _webhook_errors():
                handle = await jobwire.enqueue(
                    spec,
                    arguments,
                    delay=body.delay,
                    run_at=body.run_at,
                    expires_in=body.expires_in,
                    expires_at=body.expires_at,
                    priority=body.priority,
                    queue=body.queue,
                    idempotency_key=idempotency_key,
                    owner=owner,
                    fingerprint=fingerprint_of(payload) if idempotency_key is not None else None,
                    options=_submit_options(body, request),
                )
        finally:
            if key is not None:
                in_flight.discard(key)
        view = job_view(handle.job, _base(request))
        headers = {"Location": view["links"]["self"]}
        if not handle.created:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(view, status_code=status.HTTP_202_ACCEPTED, headers=headers)

    @router.get("", response_model=JobPage, summary="List jobs, newest first")
    async def list_jobs(
        request: Request,
        owner: str = owner_param,
        state: Annotated[
            list[str] | None, Query(description="Filter by state; repeat or comma-separate")
        ] = None,
        job: Annotated[str | None, Query(max_length=200)] = None,
        queue: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=settings.max_page_size)] = settings.default_page_size,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> JSONResponse:
        states: list[State] = []
        for item in state or []:
            for name in item.split(","):
                name = name.strip()
                if not name:
                    continue
                try:
                    states.append(State(name))
                except ValueError:
                    allowed = ", ".join(s.value for s in State)
                    raise invalid(
                        ("query", "state"),
                        f"unknown state {name!r}; expected one of {allowed}",
                        "enum",
                        name,
                    ) from None
        query = ListQuery(
            owner=owner,
            states=tuple(states),
            job=job,
            queue=queue,
            before_id=_decode_cursor(cursor) if cursor else None,
            limit=limit,
        )
        with http_errors():
            page = await jobwire.store.list(query)
        base = _base(request)
        return JSONResponse(
            {
                "items": [list_item(j, base) for j in page.items],
                "next_cursor": _encode_cursor(page.next_cursor),
            }
        )

    @router.get(
        "/{job_id}",
        response_model=JobView,
        summary="Get a job; ?wait=S long-polls until it ends or S seconds pass",
        responses=_NOT_FOUND,
    )
    async def get_job(
        request: Request,
        job_id: JobIdPath,
        owner: str = owner_param,
        wait: Annotated[float | None, Query(ge=0, le=settings.max_wait_seconds)] = None,
    ) -> JSONResponse:
        if not is_job_id(job_id):
            raise not_found(job_id)
        with http_errors():
            job = await jobwire.store.get(job_id, owner)
            if job is None:
                raise not_found(job_id)
            if wait and not job.terminal:
                try:
                    job = await jobwire.wait(job_id, wait, owner=owner)
                except TimeoutError:
                    job = await jobwire.store.get(job_id, owner)
                except JobNotFound:
                    job = None
                if job is None:
                    raise not_found(job_id)
            hooked = bool(job.options.get("webhook"))
            webhooks = await jobwire.store.deliveries_for(job_id) if hooked else []
            no_worker = await jobwire.no_worker(job)
        return JSONResponse(job_view(job, _base(request, f"/{job_id}"), webhooks, no_worker))

    @router.post(
        "/{job_id}/cancel",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=JobView,
        summary="Cancel: a queued job at once, a running one cooperatively, then by force",
        responses={
            **_NOT_FOUND,
            409: {"description": "The job has already ended"},
            415: {"description": "A body was sent, and not as application/json"},
        },
    )
    async def cancel_job(
        request: Request, job_id: JobIdPath, owner: str = owner_param
    ) -> JSONResponse:
        require_json(request, body_optional=True)
        if not is_job_id(job_id):
            raise not_found(job_id)
        with http_errors():
            job = await jobwire.store.cancel(job_id, owner)
        return JSONResponse(job_view(job, _base(request, f"/{job_id}/cancel")), status_code=202)

    return router


def _check_expiry(body: SubmitRequest, default: float | None, payload: Any) -> None:
    """422 naming the field when the job would expire before it is due."""
    try:
        due = schedule(body.delay, body.run_at)
    except ValueError:
        return  # delay with run_at: enqueue says so
    try:
        expiry(default, body.expires_in, body.expires_at, due)
    except ValueError as exc:
        if body.expires_at is not None:
            field = "expires_at"
        elif body.expires_in is not None:
            field = "expires_in"
        else:  # the job's own expires option, against a late delay or run_at
            field = "run_at" if body.run_at is not None else "delay"
        value = payload.get(field) if isinstance(payload, dict) else None
        raise invalid(("body", field), str(exc), value=value) from exc


def _submit_options(body: Any, request: Request) -> dict[str, Any] | None:
    """The job's options from a submit: its webhook, and the request's trace context
    (the server's span, or the client's ``traceparent`` when the server is not traced)."""
    options: dict[str, Any] = {}
    if body.webhook:
        options["webhook"] = body.webhook.model_dump(mode="json")
    context = tracing.capture(request.headers)
    if context is not None:
        options[tracing.OPTION] = context
    return options or None
