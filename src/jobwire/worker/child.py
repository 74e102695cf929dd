"""The main loop of a job process: run one job at a time, report over a pipe as JSON.

Three threads: the main one runs the job; a reader takes "run" and "cancel" messages
(and exits the process when the worker's end of the pipe closes, so a killed worker
leaves no orphan); a sender drains an in-memory queue into the pipe, so
``ctx.progress`` never blocks the job even when the worker is slow to read.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import queue
import signal
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _resolve(module: str, qualname: str) -> Any:
    from jobwire.jobs import JobSpec

    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, JobSpec):
        raise TypeError(f"{module}.{qualname} is not a registered jobwire job")
    return target


def child_main(conn: Connection, preload: list[str]) -> None:
    _die_with_parent()
    # Ctrl-C reaches the whole process group; the worker decides how jobs stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for module in preload:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    from jobwire.context import JobContext
    from jobwire.model import EventDraft
    from jobwire.worker.call import describe

    outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    runs: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    cancel = threading.Event()

    def send(message: list[Any]) -> None:
        outbox.put(json.dumps(message, separators=(",", ":")).encode())

    def sender() -> None:
        while True:
            data = outbox.get()
            if data is None:
                return
            try:
                conn.send_bytes(data)
            except OSError:
                os._exit(0)

    def reader() -> None:
        while True:
            try:
                message = json.loads(conn.recv_bytes())
            except (EOFError, OSError):
                os._exit(0)
            if message["op"] == "run":
                runs.put(message)
            elif message["op"] == "cancel":
                cancel.set()

    threading.Thread(target=sender, name="jobwire-child-send", daemon=True).start()
    threading.Thread(target=reader, name="jobwire-child-read", daemon=True).start()
    send(["ready", os.getpid()])

    while True:
        run = runs.get()
        cancel.clear()

        def sink(draft: EventDraft) -> None:
            send(["event", draft.type.value, draft.data])

        try:
            spec = _resolve(run["module"], run["qualname"])
            ctx = JobContext(
                run["job_id"], spec.name, run["attempt"], sink, cancel, spec.options.log_events
            )
            try:
                kwargs = spec.load_arguments(run["args"])
            except Exception as exc:
                send(["error", {**describe(exc), "permanent": True}])
                continue
            value = spec.fn(ctx, **kwargs) if spec.takes_context else spec.fn(**kwargs)
            send(["ok", spec.dump_result(value)])
        except BaseException as exc:
            send(["error", describe(exc)])
