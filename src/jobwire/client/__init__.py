"""A client of jobwire's HTTP API for other services, on httpx; it does not import FastAPI.

::

    from jobwire.client import Client

    with Client("http://jobs.internal/jobs", api_key="key1") as jobs:
        view = jobs.submit("crunch", {"n": 1000})
        for event in jobs.events(view["id"]):
            print(event["type"], event["data"])
        print(jobs.wait(view["id"])["result"])

``AsyncClient`` is the same with ``await`` (and ``async for`` over ``events``). Errors
the server answers are jobwire's own: 404 ``JobNotFound``, 409 ``AlreadyTerminal``
(cancel) or ``IdempotencyInProgress`` (submit), 422 ``InvalidArguments`` (its
``errors`` are the server's ``detail``), 401 ``Unauthorized``, 429 ``TooManyRequests``,
503 ``StoreUnavailable``, anything else ``HTTPError``.
"""

from jobwire.client._async import AsyncClient
from jobwire.client._sse import ServerSentEvent, SSEDecoder
from jobwire.client._sync import Client
from jobwire.errors import (
    AlreadyTerminal,
    HTTPError,
    IdempotencyInProgress,
    InvalidArguments,
    JobNotFound,
    JobwireError,
    StoreUnavailable,
    TooManyRequests,
    Unauthorized,
)

__all__ = [
    "AlreadyTerminal",
    "AsyncClient",
    "Client",
    "HTTPError",
    "IdempotencyInProgress",
    "InvalidArguments",
    "JobNotFound",
    "JobwireError",
    "SSEDecoder",
    "ServerSentEvent",
    "StoreUnavailable",
    "TooManyRequests",
    "Unauthorized",
]
