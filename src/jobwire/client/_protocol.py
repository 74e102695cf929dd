"""What the sync and async clients share: the requests they send and how they read the
answers. No I/O here, so the two clients differ only in ``await``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from jobwire.client._sse import ServerSentEvent
from jobwire.errors import (
    AlreadyTerminal,
    HTTPError,
    IdempotencyInProgress,
    InvalidArguments,
    JobNotFound,
    StoreUnavailable,
    TooManyRequests,
    Unauthorized,
)

TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
TERMINAL_EVENTS = TERMINAL_STATES
# One long-poll asks for at most this long: under the server's default cap of 60 s.
LONG_POLL_SECONDS = 30.0
# Reconnects of an event stream in a row without an event in between, then give up.
MAX_RECONNECTS = 10


@dataclass(frozen=True, slots=True)
class Call:
    """One request: what to send, and what a 404 or 409 means for it."""

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    job_id: str = ""
    idempotency_key: str = ""
    job: str = ""

    def request(self, http: httpx.Client | httpx.AsyncClient, base: str) -> httpx.Request:
        # Joined by hand: httpx's base_url would add a slash, and P/ is not P.
        params = {k: v for k, v in self.params.items() if v is not None}
        return http.build_request(
            self.method, base + self.path, params=params, json=self.body, headers=dict(self.headers)
        )


def submit_call(
    job: str,
    args: Mapping[str, Any] | None,
    *,
    delay: float | None,
    run_at: datetime | str | None,
    priority: int | None,
    queue: str | None,
    webhook: Mapping[str, Any] | None,
    idempotency_key: str | None,
) -> Call:
    body: dict[str, Any] = {"job": job, "args": dict(args or {})}
    if isinstance(run_at, datetime):
        run_at = run_at.isoformat()
    options = {
        "delay": delay,
        "run_at": run_at,
        "priority": priority,
        "queue": queue,
        "webhook": dict(webhook) if webhook is not None else None,
    }
    body.update({k: v for k, v in options.items() if v is not None})
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    key = idempotency_key or ""
    return Call("POST", "", body=body, headers=headers, idempotency_key=key, job=job)


def get_call(job_id: str, wait: float | None = None) -> Call:
    return Call("GET", f"/{job_id}", params={"wait": wait}, job_id=job_id)


def cancel_call(job_id: str) -> Call:
    return Call("POST", f"/{job_id}/cancel", job_id=job_id)


def list_call(
    state: str | list[str] | None,
    job: str | None,
    queue: str | None,
    limit: int | None,
    cursor: str | None,
) -> Call:
    states = ",".join(state) if isinstance(state, list) else state
    params = {"state": states, "job": job, "queue": queue, "limit": limit, "cursor": cursor}
    return Call("GET", "", params=params)


def events_call(job_id: str, last_event_id: str) -> Call:
    """The job's SSE stream after ``last_event_id`` (a sequence number): the server
    replays the log after it, so a reconnect loses nothing."""
    headers = {"Accept": "text/event-stream", "Last-Event-ID": last_event_id}
    return Call("GET", f"/{job_id}/events", headers=headers, job_id=job_id)


def reconnect_delay(retry_ms: int | None, failures: int) -> float:
    """The server's ``retry:`` hint (else 1 s), doubled per failure in a row, capped: a
    restart of the server is ridden out, a server gone for good is given up on."""
    return float(min(((retry_ms or 1000) / 1000) * 2 ** (failures - 1), 10.0))


def base_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def answer(call: Call, response: httpx.Response) -> Any:
    """The JSON body of a success, or the jobwire error the status stands for."""
    if response.is_success:
        return response.json() if response.content else None
    raise error_for(call, response)


def error_for(call: Call, response: httpx.Response) -> Exception:
    try:
        detail: Any = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = response.text
    status = response.status_code
    if status == 404 and call.job_id:
        return JobNotFound(call.job_id)
    if status == 409 and call.idempotency_key:
        return IdempotencyInProgress(call.idempotency_key)
    if status == 409 and call.job_id:
        return AlreadyTerminal(call.job_id, _state_in(str(detail)), "cancel")
    if status == 422:
        errors = detail if isinstance(detail, list) else [{"loc": (), "msg": str(detail)}]
        return InvalidArguments(call.job or "(request)", errors)
    if status == 401:
        return Unauthorized(status, detail)
    if status == 429:
        return TooManyRequests(status, detail)
    if status == 503:
        return StoreUnavailable(str(detail))
    return HTTPError(status, detail)


def _state_in(detail: str) -> str:
    """``job X is succeeded; cannot …`` → ``succeeded``."""
    head = detail.partition(";")[0]
    return head.rsplit(" ", 1)[-1] if " is " in head else "terminal"


def decode_event(sse: ServerSentEvent) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(sse.data)
    return event
