"""The Redis server the tests use, and stores under a key prefix of their own.

Tests talk to the Redis at ``redis://127.0.0.1:6379/0`` (``JOBWIRE_TEST_REDIS_URL``
overrides it). When it cannot be reached the tests that need it are skipped with the
reason, unless ``JOBWIRE_REQUIRE_SERVICES=1``, where they fail instead.

Every store gets a prefix of its own under one prefix per test session, so tests never
see each other's keys, nor those of another session running at the same time; the
session's keys are deleted when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import uuid
from functools import cache

import pytest
import redis

from jobwire.store.redis import RedisStore

URL = os.environ.get("JOBWIRE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SESSION_PREFIX = f"jobwire-test:{uuid.uuid4().hex[:12]}:"
_serial = itertools.count(1)
_used = False


@cache
def _unreachable() -> str | None:
    """Why the server cannot be used, or None when it can."""
    try:
        with redis.Redis.from_url(URL, socket_connect_timeout=2, socket_timeout=5) as client:
            client.ping()
    except redis.RedisError as exc:
        return (
            f"Redis at {URL} is not reachable ({exc}); "
            "start redis-server or set JOBWIRE_TEST_REDIS_URL"
        )
    return None


def require_redis() -> None:
    """Skip (or, with JOBWIRE_REQUIRE_SERVICES=1, fail) when Redis is not reachable."""
    reason = _unreachable()
    if reason is None:
        return
    if os.environ.get("JOBWIRE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"JOBWIRE_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def new_prefix() -> str:
    global _used
    require_redis()
    if not _used:
        _used = True
        atexit.register(delete_keys, SESSION_PREFIX)
    return f"{SESSION_PREFIX}{next(_serial)}:"


def new_store(prefix: str | None = None, **options: float) -> RedisStore:
    """An unopened store with a fresh prefix (or the one given, to share data)."""
    return RedisStore(URL, prefix=prefix or new_prefix(), **options)


def delete_keys(prefix: str) -> None:
    with contextlib.suppress(redis.RedisError), redis.Redis.from_url(URL) as client:
        batch = []
        for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
