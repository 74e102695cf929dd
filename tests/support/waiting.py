"""Waiting on a condition without sleeping blindly: follow the log, or poll with a deadline."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from jobwire import Event, Jobwire


async def until(
    condition: Callable[[], Any | Awaitable[Any]],
    *,
    within: float = 10.0,
    every: float = 0.02,
    what: str = "the condition",
) -> Any:
    """Poll ``condition`` (plain or async) until it returns something truthy; return it.

    Only for states that no event announces (a process gone, a child reaped). Raises
    AssertionError naming ``what`` when ``within`` seconds pass.
    """
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(every)


async def first_event(
    app: Jobwire,
    job_id: str,
    matches: Callable[[Event], bool],
    *,
    within: float = 20.0,
) -> Event:
    """Follow the job's log until an event ``matches``; fail if the job ends first."""

    async def follow() -> Event:
        async for event in app.events(job_id):
            if matches(event):
                return event
            if event.type.terminal:
                raise AssertionError(f"job {job_id} ended with {event.type} first: {event.data}")
        raise AssertionError(f"the log of job {job_id} ended without a matching event")

    async with asyncio.timeout(within):
        return await follow()


def output_is(value: Any) -> Callable[[Event], bool]:
    """An event matcher: an ``output`` event carrying ``value``."""
    return lambda e: e.type.value == "output" and e.data.get("output") == value


def output_has(key: str) -> Callable[[Event], bool]:
    """An event matcher: an ``output`` event whose value is a dict holding ``key``."""
    return lambda e: (
        e.type.value == "output"
        and isinstance(e.data.get("output"), dict)
        and key in e.data["output"]
    )


async def event_types(app: Jobwire, job_id: str) -> list[str]:
    return [event.type.value for event in await app.store.events(job_id)]
