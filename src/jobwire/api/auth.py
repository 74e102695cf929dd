"""Who is asking: every job has an owner, set by an auth dependency.

Built in: API keys (``JOBWIRE_API_KEYS="key1=alice,key2=bob"``), sent as
``Authorization: Bearer key1`` (browsers opening a WebSocket, which cannot set headers,
may pass ``?access_token=key1`` instead). Or the app's own FastAPI dependency returning the owner
as a string. Without either, every job belongs to one anonymous owner.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import HTTPException, status
from starlette.requests import HTTPConnection

ANONYMOUS = "anonymous"

OwnerDependency = Callable[..., str] | Callable[..., Awaitable[str]]


def parse_api_keys(text: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, owner = item.partition("=")
        if not sep or not key.strip() or not owner.strip():
            raise ValueError("JOBWIRE_API_KEYS: expected 'key=owner,key2=owner2'")
        keys[key.strip()] = owner.strip()
    return keys


def api_key_owner(keys: Mapping[str, str]) -> Callable[[HTTPConnection], Any]:
    async def owner(connection: HTTPConnection) -> str:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not (scheme.lower() == "bearer" and token) and connection.scope["type"] == "websocket":
            token = connection.query_params.get("access_token", "")
        if token:
            for key, name in keys.items():
                if hmac.compare_digest(key.encode(), token.strip().encode()):
                    return name
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid API key",
            headers={"WWW-Authenticate": "Bearer"},
        )

    return owner


async def anonymous_owner() -> str:
    return ANONYMOUS
