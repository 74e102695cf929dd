"""One listener per process on the store's wake-ups, fanned out to many waiters.

A waiter registers a :class:`Watch` *before* it reads the store and waits on it after,
so a change committed between the read and the wait is never missed: it has already
set the watch. A wake-up only says "look again"; what changed is read from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence

from jobwire.store.base import Notice, NoticeKind, Store


class Watch:
    """A latch that stays set from a wake-up until the next :meth:`wait` returns."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    @property
    def woken(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float | None) -> bool:
        """Wait for a wake-up; True when woken, False on timeout. Clears the latch."""
        try:
            if timeout is None:
                await self._event.wait()
            else:
                async with asyncio.timeout(max(0.0, timeout)):
                    await self._event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._event.clear()


CancelCallback = Callable[[str], None]


class Hub:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._jobs: defaultdict[str, set[Watch]] = defaultdict(set)
        self._queues: defaultdict[str, set[Watch]] = defaultdict(set)
        self._everything: set[Watch] = set()
        self._cancel_callbacks: list[CancelCallback] = []
        store.add_listener(self._on_notices)

    def close(self) -> None:
        self._store.remove_listener(self._on_notices)

    def _on_notices(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            if notice.kind is NoticeKind.JOB:
                for watch in self._jobs.get(notice.key, ()):
                    watch.wake()
            elif notice.kind is NoticeKind.JOBS:
                for watch in self._queues.get(notice.key, ()):
                    watch.wake()
            elif notice.kind is NoticeKind.CANCEL:
                for callback in list(self._cancel_callbacks):
                    callback(notice.key)
        if notices:
            for watch in self._everything:
                watch.wake()

    @contextlib.contextmanager
    def watch_job(self, job_id: str) -> Iterator[Watch]:
        watch = Watch()
        self._jobs[job_id].add(watch)
        try:
            yield watch
        finally:
            self._discard(self._jobs, job_id, watch)

    @contextlib.contextmanager
    def watch_queues(self, queues: Iterable[str]) -> Iterator[Watch]:
        watch = Watch()
        names = list(queues)
        for name in names:
            self._queues[name].add(watch)
        try:
            yield watch
        finally:
            for name in names:
                self._discard(self._queues, name, watch)

    @contextlib.contextmanager
    def watch_all(self) -> Iterator[Watch]:
        watch = Watch()
        self._everything.add(watch)
        try:
            yield watch
        finally:
            self._everything.discard(watch)

    @contextlib.contextmanager
    def on_cancel(self, callback: CancelCallback) -> Iterator[None]:
        self._cancel_callbacks.append(callback)
        try:
            yield
        finally:
            self._cancel_callbacks.remove(callback)

    @staticmethod
    def _discard(index: defaultdict[str, set[Watch]], key: str, watch: Watch) -> None:
        watchers = index.get(key)
        if watchers is not None:
            watchers.discard(watch)
            if not watchers:
                del index[key]
