"""The dashboard's routes under ``P/ui``: the page, its static files, sign-in, JSON reads,
actions, and the two live streams it follows.

Who may look: with ``JOBWIRE_API_KEYS``, a browser signs in once with an API key and
gets a session cookie (see :mod:`jobwire.dashboard.session`); a script may send
``Authorization: Bearer``. With the application's own auth dependency, that dependency
decides. ``JOBWIRE_DASHBOARD_OPEN=1`` opens it to anyone who reaches it (every job, no
sign-in), for local development, with a warning logged at each start. Otherwise it is
closed. A signed-in viewer sees and acts on the jobs they own; the per-queue counts
(kept for every owner together) are shown only to a viewer who may see every job, and the
workers list, shown to all, names other owners' running jobs only to such a viewer.

Every view reads its history from the store and then follows a stream over the same
event feed as ``GET P/events`` (``P/ui/api/events``, and the job's own log with its
partial outputs at ``P/ui/api/jobs/{id}/events``). The dashboard's streams send a batch
of events at most every :data:`FRAME_INTERVAL` seconds, so a view redraws at most ten
times a second however fast jobs run.
"""

# No postponed annotations: FastAPI reads these signatures at runtime.

import asyncio
import html
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from jobwire.api.auth import parse_api_keys
from jobwire.api.body import read_bounded, read_json, require_json
from jobwire.api.hosts import host_guard
from jobwire.api.problems import http_errors, invalid, not_found
from jobwire.api.stream import (
    FEED_TYPES,
    MAX_CURSOR,
    MAX_SEQ,
    CursorPosition,
    EventStreamResponse,
    SeqPosition,
    StreamLimiter,
    parse_position,
)
from jobwire.api.workflows import workflow_view
from jobwire.dashboard.limits import AttemptLimiter
from jobwire.dashboard.session import COOKIE, CSRF_HEADER, SESSION_SECONDS, Sessions, same_origin
from jobwire.dashboard.views import (
    boundary_id,
    job_detail,
    job_summary,
    worker_view,
)
from jobwire.feed.follow import follow_all_pages, follow_pages
from jobwire.feed.results import resolve_results
from jobwire.ids import is_job_id, new_job_id
from jobwire.model import TERMINAL_STATES, Event, State
from jobwire.settings import env_name
from jobwire.store.base import BulkQuery, FinishedQuery, ListQuery

if TYPE_CHECKING:
    from jobwire.app import Jobwire

log = logging.getLogger("jobwire.dashboard")

# At most one stream message per view this often: a batch of every event since the last.
FRAME_INTERVAL = 0.1
# Times the dashboard takes (epoch seconds): from 1970 to the end of year 9999.
LATEST_EPOCH = 253402300799.0
# The sign-in form holds one key; the purge filter a few fields.
MAX_SIGN_IN_BYTES = 4096
MAX_ACTION_BYTES = 16384

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _static(name: str) -> str:
    return resources.files("jobwire.dashboard").joinpath("static", name).read_text("utf-8")


def _static_names() -> frozenset[str]:
    folder = resources.files("jobwire.dashboard").joinpath("static")
    return frozenset(
        entry.name
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(s) for s in STATIC_TYPES)
    )


@dataclass(frozen=True, slots=True)
class Viewer:
    owner: str | None  # None: every job (an open dashboard)
    binding: str  # what the CSRF token is bound to
    needs_csrf: bool  # credentials a browser sends on its own (a cookie; none at all)


class Mode:
    OPEN = "open"  # JOBWIRE_DASHBOARD_OPEN: no credentials, every job
    APP = "app"  # the application's own auth dependency decides
    KEYS = "keys"  # API keys, exchanged for a session cookie by a browser
    CLOSED = "closed"  # nothing configured: nobody gets in


def _ui_base(request: Request, tail: str) -> str:
    path = request.url.path
    if tail and path.endswith(tail):
        path = path[: -len(tail)]
    return path.rstrip("/")


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**SECURITY_HEADERS, **(extra or {})}


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _json(content: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status_code, headers=_headers())


def _states(
    values: list[str] | None, loc: tuple[str, str] = ("query", "state")
) -> tuple[State, ...]:
    states: list[State] = []
    for item in values or []:
        for name in item.split(","):
            if name.strip():
                try:
                    states.append(State(name.strip()))
                except ValueError:
                    allowed = ", ".join(s.value for s in State)
                    raise invalid(
                        loc, f"unknown state; expected one of {allowed}", "enum", name.strip()
                    ) from None
    return tuple(states)


def _epoch(body: dict[str, Any], name: str) -> float | None:
    """A time of the purge filter: absent, null, or epoch seconds within range."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(("body", name), "expected epoch seconds (a number) or null", "float_type")
    if not (isinstance(value, int) and 0 <= value <= LATEST_EPOCH) and not (
        isinstance(value, float) and math.isfinite(value) and 0 <= value <= LATEST_EPOCH
    ):
        raise invalid(("body", name), f"must be from 0 to {LATEST_EPOCH:.0f}", "float_range", value)
    return float(value)


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise invalid(("body", name), "expected a string of at most 200 characters or null")
    return value


def build_dashboard(jobwire: "Jobwire") -> APIRouter:
    settings = jobwire.settings
    keys = parse_api_keys(settings.api_keys) if settings.api_keys else {}
    sessions = Sessions.for_keys(keys, salt=settings.url)
    if settings.dashboard_open:
        mode = Mode.OPEN
        log.warning(
            "the dashboard is open (%s=1): anyone who can reach it sees and acts on every "
            "job without credentials; use this for local development only",
            env_name("dashboard_open"),
        )
    elif jobwire.auth is not None:
        mode = Mode.APP
    elif keys:
        mode = Mode.KEYS
    else:
        mode = Mode.CLOSED
    # An open dashboard answers only the names it should (see api/hosts.py).
    guards = [Depends(host_guard(settings.allowed_hosts))] if mode == Mode.OPEN else []
    router = APIRouter(include_in_schema=False, dependencies=guards)
    limiter = StreamLimiter(settings.max_streams_per_owner)
    sign_ins = AttemptLimiter(settings.sign_in_attempts_per_minute, per_seconds=60.0)
    static_names = _static_names()
    store = jobwire.store

    # -- who is looking ------------------------------------------------------------------

    def from_request(request: Request) -> Viewer | None:
        if mode == Mode.OPEN:
            return Viewer(None, "open", True)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            owner = sessions.owner_of_key(token)
            if owner is None:
                raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
            return Viewer(owner, "bearer", False)  # not sent by a browser on its own
        cookie = request.cookies.get(COOKIE)
        owner = sessions.owner(cookie)
        return None if owner is None or cookie is None else Viewer(owner, cookie, True)

    optional_viewer: Callable[..., Awaitable[Viewer | None]]
    if mode == Mode.APP:
        app_auth: Any = jobwire.auth

        async def app_viewer(owner: str = Depends(app_auth)) -> Viewer | None:
            return Viewer(owner, "app\0" + owner, True)

        optional_viewer = app_viewer

    else:

        async def request_viewer(request: Request) -> Viewer | None:
            return from_request(request) if mode != Mode.CLOSED else None

        optional_viewer = request_viewer

    async def required_viewer(
        found: Annotated[Viewer | None, Depends(optional_viewer)],
    ) -> Viewer:
        if found is None:
            raise HTTPException(
                401, "sign in to the dashboard first", headers={"WWW-Authenticate": "Bearer"}
            )
        return found

    ViewerDep = Annotated[Viewer, Depends(required_viewer)]

    def guard(request: Request, viewer: Viewer) -> None:
        """Refuse an action a page of another site could have made the browser send."""
        if not viewer.needs_csrf:
            return
        token = request.headers.get(CSRF_HEADER)
        if not same_origin(request.headers, request.url.scheme) or not sessions.csrf_ok(
            viewer.binding, token
        ):
            raise HTTPException(403, "cross-site request refused: reload the dashboard")

    def closed_page() -> HTMLResponse:
        body = _static("closed.html").replace(
            "{{settings}}",
            f"{env_name('api_keys')} (then sign in with a key), or "
            f"{env_name('dashboard_open')}=1 for local development",
        )
        return HTMLResponse(body, status_code=403, headers=_headers())

    # -- pages -----------------------------------------------------------------------------

    async def page(request: Request, tail: str) -> Response:
        base = _ui_base(request, tail)
        if mode == Mode.CLOSED:
            return closed_page()
        viewer = from_request(request)
        if viewer is None:
            return RedirectResponse(base + "/login", 303, headers=_headers())
        return shell(base, viewer)

    def shell(base: str, viewer: Viewer) -> HTMLResponse:
        body = (
            _static("index.html")
            .replace("{{base}}", html.escape(base))
            .replace("{{csrf}}", html.escape(sessions.csrf_token(viewer.binding)))
            .replace("{{owner}}", html.escape(viewer.owner or "every owner"))
            .replace("{{signout}}", "" if mode == Mode.KEYS else "hidden")
        )
        return HTMLResponse(body, headers=_headers())

    if mode == Mode.APP:
        # The application's own dependency answers the page as it answers its routes.

        @router.get("/ui", response_class=HTMLResponse)
        async def app_page(request: Request, viewer: ViewerDep) -> Response:
            return shell(_ui_base(request, ""), viewer)

        @router.get("/ui/", response_class=HTMLResponse)
        async def app_page_slash(request: Request, viewer: ViewerDep) -> Response:
            return shell(_ui_base(request, ""), viewer)

    else:

        @router.get("/ui", response_class=HTMLResponse)
        async def index(request: Request) -> Response:
            return await page(request, "")

        @router.get("/ui/", response_class=HTMLResponse)
        async def index_slash(request: Request) -> Response:
            return await page(request, "")

    @router.get("/ui/static/{name}")
    async def static(name: str) -> Response:
        if name not in static_names:
            raise HTTPException(404, "no such file")
        suffix = name[name.rfind(".") :]
        return Response(
            _static(name),
            media_type=STATIC_TYPES[suffix],
            headers=_headers({"Cache-Control": "no-cache"}),
        )

    # -- signing in --------------------------------------------------------------------------

    def login_page(base: str, message: str, status_code: int = 200) -> HTMLResponse:
        body = (
            _static("login.html")
            .replace("{{base}}", html.escape(base))
            .replace("{{message}}", html.escape(message))
            .replace("{{hidden}}", "" if message else "hidden")
        )
        return HTMLResponse(body, status_code=status_code, headers=_headers())

    def without_sign_in(request: Request) -> tuple[str, Response | None]:
        """The dashboard's base path, and the answer when this mode has no sign-in."""
        if mode == Mode.CLOSED:
            return "", closed_page()
        base = _ui_base(request, "/login")
        if mode != Mode.KEYS:
            return base, RedirectResponse(base + "/", 303, headers=_headers())
        return base, None

    @router.get("/ui/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        base, answer = without_sign_in(request)
        return answer if answer is not None else login_page(base, "")

    @router.post("/ui/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        base, answer = without_sign_in(request)
        if answer is not None:
            return answer
        if not same_origin(request.headers, request.url.scheme):
            return login_page(base, "Sign-in from another site refused.", 403)
        client = request.client.host if request.client is not None else ""
        wait = sign_ins.attempt(client)
        if wait is not None:
            answer = login_page(base, "Too many sign-in attempts: try again later.", 429)
            answer.headers["Retry-After"] = str(wait)
            return answer
        try:
            raw = await read_bounded(request, MAX_SIGN_IN_BYTES)
        except HTTPException as exc:
            return login_page(base, "Request too large.", exc.status_code)
        form = parse_qs(raw.decode("utf-8", "replace"))
        cookie = sessions.issue((form.get("api_key") or [""])[0])
        if cookie is None:
            return login_page(base, "Wrong API key.", 401)
        response = RedirectResponse(base + "/", 303, headers=_headers())
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(SESSION_SECONDS),
            path=base + "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/ui/logout", status_code=204)
    async def logout(request: Request, viewer: ViewerDep) -> Response:
        guard(request, viewer)
        response = Response(status_code=204, headers=_headers())
        response.delete_cookie(
            COOKIE, path=_ui_base(request, "/logout") + "/", httponly=True, samesite="strict"
        )
        return response

    # -- reads -----------------------------------------------------------------------------

    @router.get("/ui/api/overview")
    async def overview(viewer: ViewerDep) -> JSONResponse:
        now = time.time()
        # The counters cover every owner's jobs: they are not for a viewer who may see
        # only their own (their jobs, activity and oldest queued job are theirs alone).
        sees_all = viewer.owner is None

        async def all_counts() -> dict[str, dict[State, int]]:
            return await store.counts() if sees_all else {}

        with http_errors():
            # Independent reads, side by side (read connections, pooled connections).
            counts, activity, oldest, workers = await asyncio.gather(
                all_counts(),
                store.activity(now, owner=viewer.owner),
                store.oldest_queued(now, owner=viewer.owner),
                store.list_workers(),
            )
        lost = sum(1 for w in workers if w.is_lost(settings.lease_seconds, now))
        return _json(
            {
                "now": now,
                "counts": {
                    queue: {state.value: n for state, n in by_state.items()}
                    for queue, by_state in sorted(counts.items())
                },
                "counts_visible": sees_all,
                "activity": activity.as_dict(),
                "oldest_queued": {q: {"since": at, "age": now - at} for q, at in oldest.items()},
                "workers": {"online": len(workers) - lost, "lost": lost},
            }
        )

    @router.get("/ui/api/jobs")
    async def jobs(
        viewer: ViewerDep,
        state: Annotated[list[str] | None, Query()] = None,
        job: Annotated[str | None, Query(max_length=200)] = None,
        queue: Annotated[str | None, Query(max_length=64)] = None,
        owner: Annotated[str | None, Query(max_length=200)] = None,
        since: Annotated[
            float | None,
            Query(ge=0, le=LATEST_EPOCH, allow_inf_nan=False, description="created at or after"),
        ] = None,
        until: Annotated[
            float | None,
            Query(ge=0, le=LATEST_EPOCH, allow_inf_nan=False, description="created at or before"),
        ] = None,
        id: Annotated[str | None, Query(max_length=64)] = None,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=settings.max_page_size)] = 50,
    ) -> JSONResponse:
        if viewer.owner is not None and owner not in (None, "", viewer.owner):
            return _json({"items": [], "next_cursor": None})
        who = viewer.owner or owner or None
        if id:
            with http_errors():
                found = await store.get(id.strip(), who) if is_job_id(id.strip()) else None
            return _json({"items": [job_summary(found)] if found else [], "next_cursor": None})
        before = cursor if cursor and is_job_id(cursor) else None
        if until is not None:
            bound = boundary_id(until)
            before = bound if before is None else min(before, bound)
        query = ListQuery(
            owner=who,
            states=_states(state),
            job=job or None,
            queue=queue or None,
            before_id=before,
            limit=limit,
        )
        with http_errors():
            page = await store.list(query)
        items, next_cursor = page.items, page.next_cursor
        if since is not None:
            floor = boundary_id(since - 0.001)
            kept = [j for j in items if j.id >= floor]
            if len(kept) < len(items):
                items, next_cursor = kept, None
        return _json({"items": [job_summary(j) for j in items], "next_cursor": next_cursor})

    @router.get("/ui/api/jobs/{job_id}")
    async def job_page(job_id: str, viewer: ViewerDep) -> JSONResponse:
        with http_errors():
            found = await store.get(job_id, viewer.owner) if is_job_id(job_id) else None
        if found is None:
            raise not_found(job_id)
        with http_errors():
            events = await resolve_results(store, await store.events(job_id, 0, 1000))
            attempts = await store.attempts(job_id)
            retried_by = await store.retried_by(found)
            no_worker = await jobwire.no_worker(found)
        return _json(job_detail(found, events, attempts, retried_by, no_worker))

    @router.get("/ui/api/workers")
    async def workers(viewer: ViewerDep) -> JSONResponse:
        now = time.time()
        with http_errors():
            found = await store.list_workers()
        return _json(
            {
                "now": now,
                "lease_seconds": settings.lease_seconds,
                "items": [
                    worker_view(w, now, settings.lease_seconds, show_jobs=viewer.owner is None)
                    for w in found
                ],
            }
        )

    # -- actions ---------------------------------------------------------------------------

    @router.post("/ui/api/jobs/{job_id}/cancel")
    async def cancel(request: Request, job_id: str, viewer: ViewerDep) -> JSONResponse:
        guard(request, viewer)
        require_json(request, body_optional=True)
        if not is_job_id(job_id):
            raise not_found(job_id)
        with http_errors():
            cancelled = await store.cancel(job_id, viewer.owner)
        return _json(job_summary(cancelled), 202)

    @router.post("/ui/api/jobs/{job_id}/retry")
    async def retry(request: Request, job_id: str, viewer: ViewerDep) -> JSONResponse:
        guard(request, viewer)
        require_json(request, body_optional=True)
        if not is_job_id(job_id):
            raise not_found(job_id)
        with http_errors():
            enqueued = await store.retry(job_id, new_job_id(), viewer.owner)
        return _json({**job_summary(enqueued.job), "created": enqueued.created}, 202)

    async def action_filter(
        request: Request, viewer: Viewer, allowed: frozenset[State], which: str, times: str
    ) -> dict[str, Any]:
        """The fields of a purge or bulk-cancel body, checked one by one: ``states`` among
        ``allowed``, the owner (a viewer's own), job, queue, and ``<times>_after`` and
        ``<times>_before`` (the latter no later than now: what was counted is what goes)."""
        body = await read_json(request, MAX_ACTION_BYTES, empty={})
        if not isinstance(body, dict):
            raise invalid(("body",), "expected a JSON object", "dict_type")
        names = body.get("states")
        if names is None:
            names = []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise invalid(("body", "states"), "expected a list of state names", "list_type")
        states = _states(names, ("body", "states"))
        if any(s not in allowed for s in states):
            raise invalid(("body", "states"), f"only {which}", "enum")
        owner = _optional_text(body, "owner")
        if viewer.owner is not None:
            owner = viewer.owner  # a viewer acts only on their own jobs
        before = _epoch(body, f"{times}_before")
        now = time.time()
        return {
            "owner": owner,
            "states": states,
            "job": _optional_text(body, "job"),
            "queue": _optional_text(body, "queue"),
            f"{times}_after": _epoch(body, f"{times}_after"),
            f"{times}_before": min(before, now) if before is not None else now,
        }

    async def purge_query(request: Request, viewer: Viewer) -> FinishedQuery:
        fields = await action_filter(
            request, viewer, TERMINAL_STATES, "finished jobs (succeeded, failed, cancelled) go",
            "finished",
        )  # fmt: skip
        return FinishedQuery(**fields)

    def query_json(query: FinishedQuery) -> dict[str, Any]:
        return {
            "states": [s.value for s in query.states],
            "owner": query.owner,
            "job": query.job,
            "queue": query.queue,
            "finished_after": query.finished_after,
            "finished_before": query.finished_before,
        }

    @router.post("/ui/api/purge/count")
    async def purge_count(request: Request, viewer: ViewerDep) -> JSONResponse:
        guard(request, viewer)
        query = await purge_query(request, viewer)
        with http_errors():
            count = await store.count_finished(query)
        return _json({"count": count, "filter": query_json(query)})

    @router.post("/ui/api/purge")
    async def purge(request: Request, viewer: ViewerDep) -> JSONResponse:
        guard(request, viewer)
        query = await purge_query(request, viewer)
        with http_errors():
            deleted = await store.purge(query)
        return _json({"deleted": deleted, "filter": query_json(query)})

    # -- bulk cancel -------------------------------------------------------------------------

    async def bulk_query(request: Request, viewer: Viewer) -> BulkQuery:
        unfinished = frozenset({State.QUEUED, State.RUNNING})
        fields = await action_filter(
            request, viewer, unfinished, "unfinished jobs (queued, running) are cancelled",
            "created",
        )  # fmt: skip
        fields["states"] = fields["states"] or (State.QUEUED, State.RUNNING)
        return BulkQuery(**fields)

    def bulk_json(query: BulkQuery) -> dict[str, Any]:
        return {
            "states": [s.value for s in query.states],
            "owner": query.owner,
            "job": query.job,
            "queue": query.queue,
            "created_after": query.created_after,
            "created_before": query.created_before,
        }

    @router.post("/ui/api/bulk-cancel/count")
    async def bulk_cancel_count(request: Request, viewer: ViewerDep) -> JSONResponse:
        guard(request, viewer)
        query = await bulk_query(request, viewer)
        with http_errors():
            count = len(await store.matching(query))
        return _json({"count": count, "filter": bulk_json(query)})

    @router.post("/ui/api/bulk-cancel")
    async def bulk_cancel(request: Request, viewer: ViewerDep) -> JSONResponse:
        guard(request, viewer)
        query = await bulk_query(request, viewer)
        with http_errors():
            cancelled = await store.cancel_matching(query)
        return _json({"cancelled": cancelled, "filter": bulk_json(query)})

    # -- schedules ---------------------------------------------------------------------------

    @router.get("/ui/api/schedules")
    async def schedules(viewer: ViewerDep) -> JSONResponse:
        with http_errors():
            infos = await jobwire.schedule_infos(viewer.owner)
        return _json({"items": [info.as_dict() for info in infos], "now": time.time()})

    @router.post("/ui/api/schedules/{name}/{action}")
    async def pause_schedule(
        request: Request, name: str, action: str, viewer: ViewerDep
    ) -> JSONResponse:
        guard(request, viewer)
        if action not in ("pause", "resume"):
            raise HTTPException(404, f"no action {action!r}: pause or resume")
        with http_errors():
            info = await jobwire.pause_schedule(name, action == "pause", viewer.owner)
        return _json(info.as_dict())

    # -- workflows ---------------------------------------------------------------------------

    @router.get("/ui/api/workflows/{workflow_id}")
    async def workflow_page(workflow_id: str, viewer: ViewerDep) -> JSONResponse:
        with http_errors():
            info = (
                await jobwire.workflow(workflow_id, viewer.owner)
                if is_job_id(workflow_id)
                else None
            )
        if info is None:
            raise HTTPException(404, f"workflow {workflow_id} not found")
        return _json(workflow_view(info, ""))

    @router.post("/ui/api/workflows/{workflow_id}/cancel")
    async def cancel_workflow(
        request: Request, workflow_id: str, viewer: ViewerDep
    ) -> JSONResponse:
        guard(request, viewer)
        if not is_job_id(workflow_id):
            raise HTTPException(404, f"workflow {workflow_id} not found")
        with http_errors():
            info = await jobwire.cancel_workflow(workflow_id, viewer.owner)
        return _json(workflow_view(info, ""))

    # -- live --------------------------------------------------------------------------------

    def stream(
        viewer: Viewer, pages: AsyncIterator[list[Event] | None], position: Callable[[Event], int]
    ) -> Response:
        release = limiter.acquire(viewer.owner or "\0every owner")

        async def frames() -> AsyncIterator[str]:
            hint = f"retry: {settings.sse_retry_ms}\n"
            async for batch in pages:
                if batch is None:
                    yield ": keep-alive\n\n"
                    continue
                data = json.dumps(
                    [{**e.as_dict(), "cursor": e.cursor} for e in batch], separators=(",", ":")
                )
                yield f"{hint}id: {position(batch[-1])}\nevent: batch\ndata: {data}\n\n"
                hint = ""
                await asyncio.sleep(FRAME_INTERVAL)  # what arrives meanwhile goes in one batch

        response = EventStreamResponse(frames(), release)
        return _secured(response)

    def resume_point(request: Request, after: int | None, maximum: int) -> int | None:
        last = request.headers.get("last-event-id", "")
        if last.strip():
            return parse_position(last, ("header", "Last-Event-ID"), maximum)
        return after

    @router.get("/ui/api/events")
    async def events(
        request: Request,
        viewer: ViewerDep,
        after: CursorPosition = None,
    ) -> Response:
        start = resume_point(request, after, MAX_CURSOR)
        if start is None:
            with http_errors():
                start = await store.last_cursor()
        pages = follow_all_pages(
            store,
            jobwire.hub,
            start,
            owner=viewer.owner,
            tick=settings.sse_keepalive_seconds,
            types=FEED_TYPES,
        )
        return stream(viewer, pages, lambda e: e.cursor)

    @router.get("/ui/api/jobs/{job_id}/events")
    async def job_events(
        request: Request,
        job_id: str,
        viewer: ViewerDep,
        after: SeqPosition = None,
    ) -> Response:
        with http_errors():
            found = await store.get(job_id, viewer.owner) if is_job_id(job_id) else None
        if found is None:
            raise not_found(job_id)
        start = resume_point(request, after, MAX_SEQ) or 0
        if found.terminal and found.last_seq <= start:
            return Response(status_code=204, headers=_headers())
        pages = follow_pages(store, jobwire.hub, job_id, start, tick=settings.sse_keepalive_seconds)
        return stream(viewer, pages, lambda e: e.seq)

    return router
