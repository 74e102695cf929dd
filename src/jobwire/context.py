"""What a running job sees: ``ctx.progress``, ``ctx.output``, ``ctx.cancelled`` and friends.

The same class serves all three executors. It never writes to the store itself: it
hands events to a sink (the worker's reporter in the worker process, a pipe to the
worker inside a job process), which never blocks the job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from jobwire.errors import JobCancelled, LimitExceeded, SoftTimeLimit
from jobwire.limits import Limits, clip_start
from jobwire.model import EventDraft, EventType

Sink = Callable[[EventDraft], None]


class CancelSignal(Protocol):
    """What a context reads cancellation from: a ``threading.Event`` or a CancelFlag."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class CancelFlag:
    """A ``threading.Event`` that builds its lock and condition only when waited on.

    Every attempt has one, and almost no job ever blocks on it: creating a full Event per
    attempt was a measurable share of a worker's time on short jobs.
    """

    __slots__ = ("_event", "_set")

    _guard = threading.Lock()

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        with self._guard:
            event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        with self._guard:
            if self._event is None:
                self._event = threading.Event()
                if self._set:
                    self._event.set()
            event = self._event
        return event.wait(timeout)


class JobContext:
    """Handed to every job as its first argument."""

    __slots__ = (
        "_cancel",
        "_limits",
        "_log_events",
        "_logger",
        "_sink",
        "_soft",
        "attempt",
        "broken",
        "job_id",
        "job_name",
    )

    def __init__(
        self,
        job_id: str,
        job_name: str,
        attempt: int,
        sink: Sink,
        cancel: CancelSignal | None = None,
        log_events: bool = False,
        limits: Limits | None = None,
        soft: CancelSignal | None = None,
    ) -> None:
        self.job_id = job_id
        self.job_name = job_name
        self.attempt = attempt
        self._sink = sink
        self._cancel: CancelSignal = cancel if cancel is not None else CancelFlag()
        self._log_events = log_events
        self._limits = limits if limits is not None else Limits()
        # Set with the cancel signal when the attempt reaches its soft_timeout.
        self._soft: CancelSignal = soft if soft is not None else CancelFlag()
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None
        # The first limit this attempt broke: it fails even if the job caught the error.
        self.broken: LimitExceeded | None = None

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger tagged with the job; with ``log_events=True`` its lines become events."""
        if self._logger is None:
            base = logging.getLogger(f"jobwire.job.{self.job_name}")
            self._logger = _JobLogger(base, self)
        return self._logger

    def progress(
        self, current: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report how far the job is; the latest value is also kept on the job record.

        A message over JOBWIRE_MAX_PROGRESS_MESSAGE_BYTES is cut to fit (ending in …).
        """
        if message is not None:
            message = self._limits.clip_message(message)
        data: dict[str, Any] = {"current": current, "total": total, "message": message}
        self._sink(EventDraft(EventType.PROGRESS, data))

    def output(self, data: Any) -> None:
        """Publish a partial result (any JSON value) as an ``output`` event.

        Raises LimitExceeded when it is over JOBWIRE_MAX_OUTPUT_BYTES; the attempt then
        fails without a retry, even if the job catches the error.
        """
        try:
            self._limits.check_output(data)
        except LimitExceeded as exc:
            if self.broken is None:
                self.broken = exc
            raise
        self._sink(EventDraft(EventType.OUTPUT, {"output": data}))

    @property
    def cancelled(self) -> bool:
        """True once cancellation was requested, or the attempt reached its soft time
        limit or timed out: time to save what the job has and stop."""
        return self._cancel.is_set()

    @property
    def soft_limit_reached(self) -> bool:
        """True once the attempt has run for its ``soft_timeout``: the hard ``timeout``
        is coming, so save partial work now."""
        return self._soft.is_set()

    def check_cancelled(self) -> None:
        """Raise :class:`~jobwire.errors.SoftTimeLimit` once the soft time limit is
        reached, :class:`~jobwire.errors.JobCancelled` if cancellation was requested."""
        if self._cancel.is_set():
            if self._soft.is_set():
                raise SoftTimeLimit()
            raise JobCancelled(self.job_id)

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block (in a thread or process job) until cancelled or ``timeout``; True if cancelled."""
        return self._cancel.wait(timeout)

    def __repr__(self) -> str:
        return f"JobContext(job_id={self.job_id!r}, job={self.job_name!r}, attempt={self.attempt})"


class _JobLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Tags log lines with the job; with ``log_events=True`` each line is also an event."""

    def __init__(self, logger: logging.Logger, ctx: JobContext) -> None:
        super().__init__(logger, {"job_id": ctx.job_id, "attempt": ctx.attempt})
        self._ctx = ctx

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(level, msg, *args, **kwargs)
        if self._ctx._log_events and self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            # A log line is cut rather than refused: logging must never raise in the job.
            # A byte takes at most 6 in JSON (\u0001), so this always fits the output limit.
            text = clip_start(text, max(0, self._ctx._limits.output_bytes // 6 - 64))
            self._ctx.output({"log": {"level": logging.getLevelName(level), "message": text}})
