"""Stream tokens: how a browser's ``EventSource`` follows a job while API keys are on.

``EventSource`` cannot send an ``Authorization`` header, so a page asks its server (or
the API, with its key) for a token with an authenticated ``POST P/{id}/stream-token``
and opens ``P/{id}/events?token=…``. A token names its owner, its scope (one job's
id, or ``*`` for the caller's all-jobs stream) and its expiry, signed with HMAC-SHA256:
no store holds it, every process of a deployment accepts the others' tokens, and a
restart keeps them.

What one is worth, since it travels in a URL (access logs, proxies, browser history):
it reads one job's events (or the stream of all of its owner's jobs) until it expires —
``JOBWIRE_STREAM_TOKEN_SECONDS``, two minutes by default — and nothing else: it cannot
submit, cancel, list or read the job view: no other route accepts it.
``EventSource`` and WebSocket requests send no ``Referer`` carrying it, since they are
not navigations. Ownership is still checked when the stream opens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, status
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

ALL_JOBS = "*"
QUERY = "token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class StreamTokens:
    """Issues and checks stream tokens under one secret."""

    secret: bytes
    seconds: float

    @classmethod
    def for_settings(cls, secret: str, api_keys: Mapping[str, str], seconds: float) -> StreamTokens:
        """The configured secret; else one derived from the API keys (so every process
        with the same keys agrees); else a random one of this process only."""
        if secret:
            material = secret.encode()
        elif api_keys:
            pairs = "\0".join(sorted(f"{k}={v}" for k, v in api_keys.items()))
            material = f"jobwire stream tokens\0{pairs}".encode()
        else:
            material = secrets.token_bytes(32)
        return cls(hashlib.sha256(material).digest(), seconds)

    def issue(self, owner: str, scope: str, now: float | None = None) -> tuple[str, float]:
        """A token for ``owner`` over ``scope`` (a job id or ``*``), and when it expires."""
        expires = int((time.time() if now is None else now) + self.seconds)
        body = f"v1.{expires}.{_b64(owner.encode())}.{_b64(scope.encode())}"
        return f"{body}.{self._sign(body)}", float(expires)

    def owner(self, token: str, job_id: str | None, now: float | None = None) -> str | None:
        """The owner, when the token is genuine, unexpired and covers this stream
        (``job_id`` None: the all-jobs stream, which only a ``*`` token covers)."""
        body, _, mac = token.rpartition(".")
        if not body or not hmac.compare_digest(mac, self._sign(body)):
            return None
        parts = body.split(".")
        if len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit():
            return None
        if int(parts[1]) <= (time.time() if now is None else now):
            return None
        try:
            owner, scope = _unb64(parts[2]).decode(), _unb64(parts[3]).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if scope == ALL_JOBS or (job_id is not None and scope == job_id):
            return owner
        return None

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self.secret, text.encode(), hashlib.sha256).digest())


def accepting_tokens(dependency: Callable[..., Any], tokens: StreamTokens) -> Callable[..., Any]:
    """The owner dependency of the stream routes: ``?token=`` when given, else ``dependency``.

    The wrapper takes ``dependency``'s own parameters (FastAPI resolves them as before)
    plus the connection; a request with a token never reaches ``dependency``'s body, so a
    key check there does not refuse it.
    """
    signature = inspect.signature(dependency, eval_str=True)
    params = list(signature.parameters.values())
    # FastAPI hands the connection to one parameter per dependency: reuse the
    # dependency's own when it has one.
    own = [
        p.name
        for p in params
        if isinstance(p.annotation, type) and issubclass(p.annotation, HTTPConnection)
    ]
    name = own[0] if own else "jobwire_stream_connection"
    if not own:
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=HTTPConnection)
        )
    is_async = inspect.iscoroutinefunction(dependency)

    async def owner(**kwargs: Any) -> str:
        connection: HTTPConnection = kwargs[name] if own else kwargs.pop(name)
        token = connection.query_params.get(QUERY)
        if token is not None:
            found = tokens.owner(token, connection.path_params.get("job_id"))
            if found is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "invalid or expired stream token; mint a new one with POST …/stream-token",
                )
            return found
        if is_async:
            result: str = await dependency(**kwargs)
        else:
            result = await run_in_threadpool(dependency, **kwargs)
        return result

    owner.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params,
        return_annotation=str,
    )
    return owner
