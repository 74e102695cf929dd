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
import runpy
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


_main_globals: dict[str, dict[str, Any]] = {}


def _resolve(module: str, qualname: str, main_path: str | None) -> Any:
    from jobwire.jobs import JobSpec

    if module == "__main__" and main_path:
        # A job defined in the worker's main script: run that script once here under
        # another name, so its `if __name__ == "__main__":` block does not run again.
        if main_path not in _main_globals:
            _main_globals[main_path] = runpy.run_path(main_path, run_name="__jobwire_main__")
        target: Any = _main_globals[main_path][qualname.split(".")[0]]
    else:
        try:
            target = importlib.import_module(module)
        except Exception as exc:  # ImportError, or whatever importing the module raised
            from jobwire.errors import JobImportError

            raise JobImportError(module, qualname, exc) from exc
        for part in qualname.split("."):
            target = getattr(target, part)
    if not isinstance(target, JobSpec):
        raise TypeError(f"{module}.{qualname} is not a registered jobwire job")
    return target


def _leave_to_the_worker(signum: int, frame: object) -> None:
    """Ignore a stop signal that was meant for the worker."""


def child_main(conn: Connection, preload: list[str], parent_pid: int) -> None:
    _die_with_parent()
    if os.getppid() != parent_pid:
        os._exit(0)  # the worker died before we could ask to die with it
    # Ctrl-C, and the SIGTERM of a service manager stopping the whole group (systemd's
    # default), reach this process too; the worker decides how its jobs stop, and kills
    # a job process with SIGKILL when it must. A handler rather than SIG_IGN, so programs
    # the job runs get the default dispositions back when they exec.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _leave_to_the_worker)
    for module in preload:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    from jobwire.context import JobContext
    from jobwire.limits import Limits
    from jobwire.model import EventDraft
    from jobwire.worker.call import conclude, describe

    outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    runs: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    cancel = threading.Event()
    soft = threading.Event()  # the soft time limit: set together with cancel

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
                # Cleared here, in arrival order: a cancel sent right after this run
                # must not be wiped out when the main thread picks the run up.
                cancel.clear()
                soft.clear()
                runs.put(message)
            elif message["op"] == "cancel":
                cancel.set()
            elif message["op"] == "soft":
                soft.set()
                cancel.set()

    threading.Thread(target=sender, name="jobwire-child-send", daemon=True).start()
    threading.Thread(target=reader, name="jobwire-child-read", daemon=True).start()
    send(["ready", os.getpid()])

    while True:
        run = runs.get()

        def sink(draft: EventDraft) -> None:
            send(["event", draft.type.value, draft.data])

        spec = None
        try:
            spec = _resolve(run["module"], run["qualname"], run.get("main_path"))
            limits = Limits(**run.get("limits", {}))
            ctx = JobContext(
                run["job_id"],
                spec.name,
                run["attempt"],
                sink,
                cancel,
                spec.options.log_events,
                limits,
                soft,
            )
            try:
                kwargs = spec.load_arguments(run["args"])
            except Exception as exc:
                send(["error", {**describe(exc), "permanent": True}])
                continue
            value = spec.fn(ctx, **kwargs) if spec.takes_context else spec.fn(**kwargs)
            # Checked here, so a result over its limit never crosses the pipe.
            send(["ok", conclude(spec, ctx, value, limits)])
        except BaseException as exc:
            send(["error", describe(exc, spec.options if spec is not None else None)])


def main() -> None:
    """Entry point: ``python -m jobwire.worker.child FD PARENT_PID`` with the worker's
    ``sys.path`` as JSON on stdin, so jobs import exactly as they do in the worker."""
    fd, parent_pid = int(sys.argv[1]), int(sys.argv[2])
    setup = json.loads(sys.stdin.readline())
    sys.path[:] = setup["sys_path"]
    child_main(Connection(fd), setup["preload"], parent_pid)


if __name__ == "__main__":
    main()
