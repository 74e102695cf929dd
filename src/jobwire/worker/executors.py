"""Where an attempt's code runs: on the worker's loop, on a thread, or in a job process.

Each executor runs a :class:`~jobwire.worker.call.Call` and returns the job's result as
JSON, or raises :class:`~jobwire.worker.call.JobRaised` with the job's own error. A hard
stop (timeout, forced cancel, shutdown) is the cancellation of ``run``: an async job is
cancelled, a process job's process is killed and replaced, and a thread job — which
Python cannot stop — is abandoned with its cancel flag set, its slot held until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any, Protocol

from pydantic import ValidationError

from jobwire.errors import SoftTimeLimit, WorkerProcessDied
from jobwire.model import EventDraft, EventType
from jobwire.worker.call import Call, JobRaised, describe, invoke_sync

log = logging.getLogger("jobwire.worker")


class Executor(Protocol):
    size: int

    async def start(self) -> None: ...

    def available(self) -> int:
        """Slots this executor could start a job in now, as far as it knows."""
        ...

    async def run(self, call: Call) -> Any: ...

    async def close(self) -> None: ...


class AsyncExecutor:
    def __init__(self, size: int) -> None:
        self.size = size

    def available(self) -> int:
        return self.size

    async def start(self) -> None:
        return None

    async def run(self, call: Call) -> Any:
        spec = call.spec
        call.started()
        try:
            kwargs = spec.load_arguments(call.args)
        except ValidationError as exc:
            raise JobRaised({**describe(exc), "permanent": True}) from exc
        try:
            context = (call.context(),) if spec.takes_context else ()
            coro = spec.fn(*context, **kwargs)
            if spec.options.soft_timeout is None:
                value = await coro
            else:
                softly = _SoftLimited(coro)
                call.soft_listeners.append(softly.reach)
                try:
                    value = await softly
                finally:
                    call.soft_listeners.remove(softly.reach)
            return call.conclude(value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise JobRaised(describe(exc, spec.options)) from exc

    async def close(self) -> None:
        return None


class _SoftLimited:
    """Awaits an async job's coroutine step by step, so that SoftTimeLimit can be raised
    inside it, where it waits, when its soft time limit is reached.

    The task is woken by a cancel, which this driver turns into SoftTimeLimit thrown into
    the job (and takes back with ``uncancel``). A hard stop that arrives meanwhile is
    still a cancel: the task's count of cancel requests says so.
    """

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        self._pending: float | None = None  # the soft limit to raise at the next wake-up
        self._task: asyncio.Task[Any] | None = None

    def reach(self, seconds: float) -> None:
        if self._task is None or self._pending is not None:
            return
        self._pending = seconds
        self._task.cancel()

    def __await__(self) -> Generator[Any, Any, Any]:
        self._task = asyncio.current_task()
        coro = self._coro
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                value = yield step
            except asyncio.CancelledError as exc:
                error = exc
                seconds, self._pending = self._pending, None
                task = self._task
                if seconds is not None and task is not None and task.uncancel() == 0:
                    error = SoftTimeLimit(seconds)
            except BaseException as exc:
                error = exc


class _DaemonThreads:
    """``size`` daemon threads taking calls from a queue.

    Not a ``ThreadPoolExecutor``: the interpreter joins that pool's threads at exit, so
    one job ignoring its cancel flag would keep a stopped worker's process alive until
    the job chose to end, long past the shutdown grace period. A daemon thread still
    running an abandoned job ends with the process instead, as a process job is killed.
    """

    def __init__(self, size: int, prefix: str) -> None:
        self._size = size
        self._prefix = prefix
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._closed = False

    def start(self) -> None:
        for i in range(self._size - len(self._threads)):
            thread = threading.Thread(target=self._serve, name=f"{self._prefix}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        if self._closed:
            raise RuntimeError("the job threads are shut down")
        self.start()
        future: Future[Any] = Future()
        self._work.put((future, fn))
        return future

    def _serve(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, fn = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self) -> None:
        """Cancel the calls not yet started; running ones are left to end on their own."""
        self._closed = True
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._threads:
            self._work.put(None)


class ThreadExecutor:
    def __init__(self, size: int) -> None:
        self.size = size
        self._threads = _DaemonThreads(size, "jobwire-job")
        self._live = 0  # threads running job code, abandoned ones included
        self._live_lock = threading.Lock()

    async def start(self) -> None:
        self._threads.start()

    def available(self) -> int:
        """Free threads: one abandoned after a timeout keeps its slot until it returns,
        so the worker does not claim a job that would queue behind it."""
        return self.size - self._live

    async def run(self, call: Call) -> Any:
        loop = asyncio.get_running_loop()
        with self._live_lock:
            self._live += 1
        call.started()
        future = self._threads.submit(functools.partial(self._invoke, call))
        return await asyncio.wrap_future(future, loop=loop)

    def _invoke(self, call: Call) -> Any:
        try:
            return invoke_sync(call)
        except JobRaised:
            raise
        except Exception as exc:
            raise JobRaised(describe(exc, call.spec.options)) from exc
        finally:
            with self._live_lock:
                self._live -= 1

    async def close(self) -> None:
        # Threads cannot be killed; an abandoned one ends on its own or with the process.
        self._threads.shutdown()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _Child:
    """One job process and the thread that reads its pipe.

    Started as ``python -m jobwire.worker.child`` with one end of a socket pair: no
    fork of the worker's threads, no re-import of the worker's ``__main__``, and
    nothing but JSON on the wire.
    """

    def __init__(self, preload: list[str], loop: asyncio.AbstractEventLoop) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jobwire.worker.child",
                    str(theirs.fileno()),
                    str(os.getpid()),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.PIPE,
                close_fds=True,
            )
            assert self.process.stdin is not None
            setup = {"sys_path": sys.path, "preload": preload}
            self.process.stdin.write(json.dumps(setup).encode() + b"\n")
            self.process.stdin.close()
        finally:
            theirs.close()
        self.conn: Connection = Connection(ours.detach())
        self._loop = loop
        self._send_lock = threading.Lock()
        self.ready: asyncio.Future[None] = loop.create_future()
        # A process killed before it was ready (a spawn cancelled at shutdown) fails
        # `ready` with nobody awaiting it: that is expected, not "never retrieved".
        self.ready.add_done_callback(_retrieve)
        self.current: tuple[Call, asyncio.Future[Any]] | None = None
        self.dead = False
        self._reader = threading.Thread(target=self._read, name="jobwire-child-pipe", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: dict[str, Any]) -> None:
        with self._send_lock:
            self.conn.send_bytes(json.dumps(message, separators=(",", ":")).encode())

    def _read(self) -> None:
        while True:
            try:
                message = json.loads(self.conn.recv_bytes())
            except (EOFError, OSError):
                break
            except ValueError:
                continue
            kind = message[0]
            if kind == "event":
                current = self.current
                if current is not None:
                    current[0].emit(EventDraft(EventType(message[1]), message[2]))
            else:
                try:
                    self._loop.call_soon_threadsafe(self._on_message, message)
                except RuntimeError:
                    break  # the worker's loop is gone
        # Reap here, off the event loop, so no zombie is left and exitcode is known.
        with contextlib.suppress(Exception):
            self.process.wait(timeout=5)
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_exit)

    def _on_message(self, message: list[Any]) -> None:
        kind = message[0]
        if kind == "ready":
            if not self.ready.done():
                self.ready.set_result(None)
            return
        current, self.current = self.current, None
        if current is None or current[1].done():
            return
        if kind == "ok":
            current[1].set_result(message[1])
        else:
            current[1].set_exception(JobRaised(message[1]))

    def _on_exit(self) -> None:
        self.dead = True
        error = WorkerProcessDied(self.process.returncode)
        if not self.ready.done():
            self.ready.set_exception(error)
        current, self.current = self.current, None
        if current is not None and not current[1].done():
            current[1].set_exception(error)

    def start(self, call: Call) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        self.current = (call, future)
        spec = call.spec
        self.send(
            {
                "op": "run",
                "module": spec.module,
                "qualname": spec.qualname,
                "job_id": call.job_id,
                "attempt": call.attempt,
                "args": call.args,
                "limits": call.limits.as_dict(),
                "main_path": getattr(sys.modules.get("__main__"), "__file__", None),
            }
        )
        return future

    def request_cancel(self) -> None:
        with contextlib.suppress(OSError):
            self.send({"op": "cancel"})

    def reach_soft_limit(self, seconds: float) -> None:
        with contextlib.suppress(OSError):
            self.send({"op": "soft"})

    def kill(self) -> None:
        self.dead = True
        with contextlib.suppress(Exception):
            self.process.kill()
        # The pipe reader reaps the process when its end of the pipe closes.

    def join(self, timeout: float) -> None:
        self._reader.join(timeout)


async def _kill_and_reap(child: _Child) -> None:
    child.kill()
    await asyncio.to_thread(child.join, 5.0)


class ProcessExecutor:
    """A pool of job processes, each running one job at a time; killable per job."""

    def __init__(self, size: int, preload: list[str] | None = None) -> None:
        self.size = size
        self._preload = list(preload or [])
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._spawning: set[asyncio.Task[None]] = set()
        self._closed = False

    def available(self) -> int:
        return self.size

    async def start(self) -> None:
        for _ in range(self.size):
            self._spawn_idle_later()

    def _spawn_idle_later(self) -> None:
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._spawn_idle())
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    async def _spawn_idle(self) -> None:
        try:
            child = await self._spawn()
        except Exception as exc:
            log.warning("could not start a job process: %s", exc)
            return
        if self._closed:
            child.kill()
            return
        self._idle.append(child)

    async def _spawn(self) -> _Child:
        loop = asyncio.get_running_loop()
        starting = loop.create_task(asyncio.to_thread(_Child, self._preload, loop))
        try:
            child = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The thread starting the process cannot be stopped: let it finish, then
            # kill what it started, so no job process outlives a cancelled spawn.
            with contextlib.suppress(Exception):
                await _kill_and_reap(await starting)
            raise
        try:
            await child.ready
        except BaseException:
            await asyncio.shield(_kill_and_reap(child))
            raise
        return child

    async def _take(self) -> _Child:
        while True:
            while self._idle:
                child = self._idle.pop()
                if not child.dead:
                    return child
            if not self._spawning:
                return await self._spawn()
            # A process for the pool is on its way: wait for it rather than start one
            # more, which would leave the pool holding more processes than its size.
            await asyncio.wait(set(self._spawning), return_when=asyncio.FIRST_COMPLETED)

    def pids(self) -> list[int]:
        return [c.pid for c in [*self._idle, *self._busy] if not c.dead]

    async def run(self, call: Call) -> Any:
        child = await self._take()
        self._busy.add(child)
        future = child.start(call)
        call.started()
        call.cancel_listeners.append(child.request_cancel)
        call.soft_listeners.append(child.reach_soft_limit)
        if call.cancel.is_set():
            child.request_cancel()  # asked before the job process had it
        healthy = False
        try:
            result = await future
            healthy = True
            return result
        except JobRaised:
            healthy = True
            raise
        finally:
            call.cancel_listeners.remove(child.request_cancel)
            call.soft_listeners.remove(child.reach_soft_limit)
            self._busy.discard(child)
            if healthy and not child.dead and not self._closed:
                self._idle.append(child)
            else:
                # Timed out, cancelled by force, or died: the process goes, a fresh one comes.
                child.kill()
                self._spawn_idle_later()

    async def close(self) -> None:
        self._closed = True
        spawning = list(self._spawning)
        for task in spawning:
            task.cancel()
        # Each cancelled spawn kills and reaps the process it had started.
        await asyncio.gather(*spawning, return_exceptions=True)
        children = [*self._idle, *self._busy]
        for child in children:
            child.kill()
        for child in children:
            await asyncio.to_thread(child.join, 5.0)
        self._idle.clear()
        self._busy.clear()
