"""One listener per process on the store's wake-ups, fanned out to many waiters.

A waiter registers a :class:`Watch` *before* it reads the store and waits on it after,
so a change committed between the read and the wait is never missed: it has already
set the watch. A wake-up only says "look again"; what changed is read from the store.

One wake-up of a job with a thousand followers must not cost a thousand reads: the
hub's :meth:`Hub.events`, :meth:`Hub.job` and :meth:`Hub.feed` share one read among
every caller asking the same question while it is in flight, provided that read
started after the wake-up each caller is answering (its *generation*), so nobody is
handed an answer older than the change that woke it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from jobwire.feed.results import resolve_results_of
from jobwire.model import Event, Job
from jobwire.store.base import Notice, NoticeKind, Store

T = TypeVar("T")


class Watch:
    """A latch that stays set from a wake-up until the next :meth:`wait` returns.

    Cheaper than an ``asyncio.Event`` under ``asyncio.timeout``: a hub with thousands
    of followers sets and waits on thousands of these per second. For the same reason
    one timer serves many waits: it is moved only when a wait needs it sooner, and when
    it fires before the current wait's deadline it re-arms itself instead of waking.
    """

    __slots__ = ("_deadline", "_set", "_timer", "_waiter")

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[bool] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0

    def wake(self) -> None:
        self._set = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    @property
    def woken(self) -> bool:
        return self._set

    async def wait(self, timeout: float | None) -> bool:
        """Wait for a wake-up; True when woken, False on timeout. Clears the latch."""
        if self._set:
            self._set = False
            return True
        loop = asyncio.get_running_loop()
        if timeout is None:
            self._deadline = float("inf")
        else:
            self._deadline = loop.time() + max(0.0, timeout)
            if self._timer is None or self._timer.when() > self._deadline:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_at(self._deadline, self._expire)
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        try:
            woken = await waiter
            # A wake-up landing between the timeout and this line still counts.
            return woken or self._set
        finally:
            self._waiter = None
            self._set = False

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        loop = waiter.get_loop()
        if self._deadline == float("inf"):
            return
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._expire)  # set for an older wait
        else:
            waiter.set_result(False)


CancelCallback = Callable[[str], None]


class _Flight:
    """A read in progress, the generation it started at, and who awaits its answer."""

    __slots__ = ("generation", "waiters")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.waiters: list[asyncio.Future[Any]] = []


class Hub:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._jobs: defaultdict[str, set[Watch]] = defaultdict(set)
        self._queues: defaultdict[str, set[Watch]] = defaultdict(set)
        self._everything: set[Watch] = set()
        self._resyncs: set[Watch] = set()
        self._cancel_callbacks: list[CancelCallback] = []
        # Wake-ups so far, counted in one sequence that only grows; per watched job, the
        # count at its last wake-up (or at its first watch): see generation().
        self._all_generation = 0
        self._job_generations: dict[str, int] = {}
        self._flights: dict[Hashable, _Flight] = {}
        store.add_listener(self._on_notices)

    def close(self) -> None:
        self._store.remove_listener(self._on_notices)

    def _on_notices(self, notices: Sequence[Notice]) -> None:
        if notices:
            self._all_generation += 1
        for notice in notices:
            if notice.kind is NoticeKind.JOB:
                watchers = self._jobs.get(notice.key)
                if watchers:
                    self._job_generations[notice.key] = self._all_generation
                    for watch in watchers:
                        watch.wake()
            elif notice.kind is NoticeKind.JOBS:
                for watch in self._queues.get(notice.key, ()):
                    watch.wake()
            elif notice.kind is NoticeKind.CANCEL:
                for callback in list(self._cancel_callbacks):
                    callback(notice.key)
            elif notice.kind is NoticeKind.RESYNC:
                self._wake_every_watch()
        if notices:
            for watch in self._everything:
                watch.wake()

    def _wake_every_watch(self) -> None:
        for job_id, watchers in self._jobs.items():
            self._job_generations[job_id] = self._all_generation
            for watch in watchers:
                watch.wake()
        for watchers in self._queues.values():
            for watch in watchers:
                watch.wake()
        for watch in self._resyncs:
            watch.wake()

    # -- shared reads ----------------------------------------------------------------------

    def generation(self, job_id: str | None = None) -> int:
        """How many wake-ups a watched job (or, with None, the store) has had.

        Read it right after registering a watch, and right after each ``wait`` returns:
        a read that started at this generation or later has seen every change the
        watch was woken for.
        """
        if job_id is None:
            return self._all_generation
        return self._job_generations.get(job_id, self._all_generation)

    def events(self, job_id: str, after: int, limit: int, since: int) -> Awaitable[list[Event]]:
        """``store.events(job_id, after, limit)``, shared with identical reads in flight."""
        return self._shared(
            ("events", job_id, after, limit),
            self.generation(job_id),
            since,
            lambda: resolve_results_of(self._store, self._store.events(job_id, after, limit)),
        )

    def job(self, job_id: str, since: int) -> Awaitable[Job | None]:
        """``store.get(job_id)``, shared with identical reads in flight."""
        return self._shared(
            ("job", job_id), self.generation(job_id), since, lambda: self._store.get(job_id)
        )

    def feed(self, after: int, owner: str | None, limit: int, since: int) -> Awaitable[list[Event]]:
        """``store.feed(after, owner, limit)``, shared with identical reads in flight."""
        return self._shared(
            ("feed", after, owner, limit),
            self._all_generation,
            since,
            lambda: resolve_results_of(self._store, self._store.feed(after, owner, limit)),
        )

    def _shared(
        self, key: Hashable, generation: int, since: int, read: Callable[[], Awaitable[T]]
    ) -> Awaitable[T]:
        flight = self._flights.get(key)
        if flight is None or flight.generation < since:
            flight = _Flight(generation)
            self._flights[key] = flight
            task = asyncio.ensure_future(read())
            task.add_done_callback(lambda done: self._landed(key, flight, done))
        # Each caller awaits its own future: one going away cancels only that future,
        # never the read the others are waiting for.
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        flight.waiters.append(waiter)
        return waiter

    def _landed(self, key: Hashable, flight: _Flight, task: asyncio.Task[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        error = None if task.cancelled() else task.exception()
        for waiter in flight.waiters:
            if waiter.done():
                continue
            if task.cancelled():
                waiter.cancel()
            elif error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(task.result())

    @contextlib.contextmanager
    def watch_job(self, job_id: str) -> Iterator[Watch]:
        watch = Watch()
        if job_id not in self._job_generations:
            # Newer than any read already in flight for this job: a read that started
            # while nobody watched may predate wake-ups that were not counted.
            self._all_generation += 1
            self._job_generations[job_id] = self._all_generation
        self._jobs[job_id].add(watch)
        try:
            yield watch
        finally:
            watch.close()
            self._discard(self._jobs, job_id, watch)
            if job_id not in self._jobs:
                self._job_generations.pop(job_id, None)

    @contextlib.contextmanager
    def watch_queues(self, queues: Iterable[str]) -> Iterator[Watch]:
        watch = Watch()
        names = list(queues)
        for name in names:
            self._queues[name].add(watch)
        try:
            yield watch
        finally:
            watch.close()
            for name in names:
                self._discard(self._queues, name, watch)

    def watch_resync(self) -> contextlib.AbstractContextManager[Watch]:
        """A watch woken only when wake-ups may have been missed (the store's listener
        is back): for a waiter told of its own news some other way."""
        return self._watch_in(self._resyncs)

    def watch_all(self) -> contextlib.AbstractContextManager[Watch]:
        return self._watch_in(self._everything)

    @staticmethod
    @contextlib.contextmanager
    def _watch_in(watchers: set[Watch]) -> Iterator[Watch]:
        watch = Watch()
        watchers.add(watch)
        try:
            yield watch
        finally:
            watch.close()
            watchers.discard(watch)

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
