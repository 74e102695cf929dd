"""One attempt of one job, as a chain of short steps.

``prepare → perform (under the timeout) → settle the outcome → record it``. The outcome
is decided in plain code before anything is written, and the final write is shielded
from cancellation, so a worker told to stop while a job finishes still records it.

Each outcome is logged once, on the ``jobwire.worker`` logger, with the job's id, name
and attempt as structured extras (``job_id``, ``job``, ``attempt``, ``max_attempts``,
and for a failure ``error_type`` and ``error_message``): a success at DEBUG, a cancel
or a hand-back at INFO, a failed attempt that will be retried (a timeout included) at
WARNING, a failure that ends the job at ERROR. The traceback is kept in the job's error
and logged at DEBUG only, so a flaky job does not fill the log with stacks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from jobwire import model, tracing
from jobwire.errors import JobTimeout, JobwireError, StaleClaim, StoreUnavailable, WorkerProcessDied
from jobwire.limits import Limits
from jobwire.outage import Outage
from jobwire.store.base import Claim, Store
from jobwire.worker.call import Call, JobRaised, describe
from jobwire.worker.reporter import Reporter

if TYPE_CHECKING:
    from jobwire.jobs import JobSpec
    from jobwire.worker.executors import Executor

log = logging.getLogger("jobwire.worker")


class StopReason(Enum):
    CANCEL = "cancel"  # a cancel request outlived its grace period
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"  # graceful shutdown ran out of grace: hand the job back
    LOST = "lost"  # the lease is gone: another attempt owns the job now


@dataclass(frozen=True, slots=True)
class Succeeded:
    result: Any


@dataclass(frozen=True, slots=True)
class Failed:
    error: dict[str, Any]
    retryable: bool = True
    requested_at: float | None = None  # the job raised Retry: run again then
    charge: bool = True  # whether this attempt counts against the job's retries


@dataclass(frozen=True, slots=True)
class Cancelled:
    pass


@dataclass(frozen=True, slots=True)
class Released:
    pass


@dataclass(frozen=True, slots=True)
class Expired:
    """Claimed past its ``expires_at``: cancelled without running its code."""


@dataclass(frozen=True, slots=True)
class Lost:
    pass


Outcome = Succeeded | Failed | Cancelled | Released | Lost | Expired


class Attempt:
    def __init__(
        self,
        claim: Claim,
        spec: JobSpec[Any, Any],
        executor: Executor,
        store: Store,
        cancel_grace: float,
        outage: Outage | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.job = claim.job
        self.token = claim.token
        self.code_ended: Callable[[], None] | None = None
        self.spec = spec
        self.executor = executor
        self.store = store
        self.cancel_grace = cancel_grace
        # Shared by a worker's attempts, so an outage is logged once, not once per job.
        self._outage = outage or Outage(log, f"job {self.job.id}: recording its outcome")
        self.started = time.monotonic()
        self.stop_reason: StopReason | None = None
        self.cancel_requested = False
        # The attempt runs as one task; a hard stop cancels that task, but only while the
        # job's code runs, never while the outcome is being recorded.
        self._task: asyncio.Task[Any] | None = None
        self._performing = False
        self._cancel_sent = False
        self._force: asyncio.TimerHandle | None = None
        self.reporter = Reporter(store, self.job.id, self.token, self._lost)
        self.limits = limits or Limits()
        self.call = Call(
            spec,
            self.job.id,
            self.job.attempts,
            self.job.args,
            self.reporter.push,
            limits=self.limits,
        )

    @property
    def job_id(self) -> str:
        return self.job.id

    # -- control from outside ------------------------------------------------------------

    def request_cancel(self) -> None:
        """Cooperative first (``ctx.cancelled``), then by force after the grace period."""
        if self.cancel_requested:
            return
        self.cancel_requested = True
        self.call.request_cancel()
        loop = asyncio.get_running_loop()
        self._force = loop.call_later(self.cancel_grace, self.stop, StopReason.CANCEL)

    def stop(self, reason: StopReason) -> None:
        """Stop the job's code now; the outcome follows from ``reason``."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.call.request_cancel()
        if self._performing and not self._cancel_sent and self._task is not None:
            self._cancel_sent = True
            self._task.cancel()

    def _lost(self) -> None:
        self.stop(StopReason.LOST)

    # -- the steps -----------------------------------------------------------------------

    async def run(self) -> Outcome:
        self._task = asyncio.current_task()
        if model.expired(self.job, time.time()):
            # A claim may hand out a job whose expiry passed while it was queued (the
            # expirer sweeps only every few seconds): it ends here, its code never run.
            expired = Expired()
            self._concluded(expired, None)
            await self._record(expired)
            return expired
        if tracing.active() is None:
            # Not shielded: the store's writer commits a queued write even if this task
            # is cancelled while awaiting it.
            outcome = self._concluded(await self._perform(), None)
            await self._record(outcome)
            return outcome
        with tracing.attempt_span(self.job) as span:
            outcome = self._concluded(await self._perform(), span)
            await self._record(outcome)
            return outcome

    def _concluded(self, performed: Outcome, span: Any) -> Outcome:
        outcome = self._settle(performed)
        if self.code_ended is not None:
            # The job's code is done: its slot can take the next job while this outcome
            # is written, so claiming more overlaps with the write.
            self.code_ended()
        if span is not None:
            error = outcome.error if isinstance(outcome, Failed) else None
            tracing.record_outcome(span, type(outcome).__name__.lower(), error)
        return outcome

    async def _perform(self) -> Outcome:
        timeout = self.job.timeout if self.job.timeout is not None else self.spec.options.timeout
        soft = self.spec.options.soft_timeout
        if soft is not None and timeout is not None and soft >= timeout:
            soft = None  # a per-job timeout shorter than the soft limit: only the hard one
        timer: asyncio.TimerHandle | None = None
        soft_timer: asyncio.TimerHandle | None = None

        def start_clock() -> None:
            # The timeout counts from when the job's code starts, not while the attempt
            # waits for a job process to start (seconds on a cold, busy machine).
            nonlocal timer, soft_timer
            loop = asyncio.get_running_loop()
            if timeout is not None:
                timer = loop.call_later(timeout, self.stop, StopReason.TIMEOUT)
            if soft is not None:
                soft_timer = loop.call_later(soft, self.call.reach_soft_limit, soft)

        if timeout is not None or soft is not None:
            self.call.on_start = start_clock
        self._performing = True
        try:
            return Succeeded(await self.executor.run(self.call))
        except asyncio.CancelledError:
            if not self._cancel_sent and self.stop_reason is None:
                # Cancelled from outside, not by stop(): the loop is going away.
                self.stop_reason = StopReason.SHUTDOWN
            return self._stopped(timeout)
        except JobRaised as exc:
            return self._failed(exc.error)
        except WorkerProcessDied as exc:
            return self._failed(describe(exc, self.spec.options))
        finally:
            self._performing = False
            if self._cancel_sent and self._task is not None:
                # The stop was ours and has been handled here: the recording that follows
                # must not see this task as still being cancelled.
                self._task.uncancel()
            if timer is not None:
                timer.cancel()
            if soft_timer is not None:
                soft_timer.cancel()
            if self._force is not None:
                self._force.cancel()

    def _stopped(self, timeout: float | None) -> Outcome:
        reason = self.stop_reason
        if reason is StopReason.TIMEOUT:
            return self._failed(describe(JobTimeout(timeout or 0.0), self.spec.options))
        if reason is StopReason.CANCEL:
            return Cancelled()
        if reason is StopReason.LOST:
            return Lost()
        return Released()

    def _failed(self, error: dict[str, Any]) -> Failed:
        """The attempt's error as stored, and its verdict (see call.describe)."""
        permanent = bool(error.pop("permanent", False))
        request = error.pop("retry", None)
        error = self.limits.clip_error(error)
        if isinstance(request, dict) and isinstance(request.get("at"), int | float):
            charge = request.get("charge") is not False
            return Failed(error, requested_at=float(request["at"]), charge=charge)
        return Failed(error, retryable=not permanent)

    def _settle(self, outcome: Outcome) -> Outcome:
        """A job that stopped itself because it was asked to counts as cancelled."""
        stopped_itself = isinstance(outcome, Failed) and outcome.error.get("type") in (
            "JobCancelled",
            "CancelledError",
            "SoftTimeLimit",  # check_cancelled() after both a soft limit and a cancel
        )
        if stopped_itself and self.cancel_requested:
            return Cancelled()
        if self.stop_reason is StopReason.LOST:
            return Lost()
        return outcome

    async def _record(self, outcome: Outcome) -> None:
        retry_at = self._retry_at(outcome) if isinstance(outcome, Failed) else None
        self._log(outcome, retry_at)
        if isinstance(outcome, Lost):
            self.reporter.close()
            return
        if self.reporter.used:
            await self.reporter.drain()
        self.reporter.close()
        job_id, token = self.job.id, self.token
        outage = self._outage
        while True:
            try:
                if isinstance(outcome, Succeeded):
                    await self.store.finish(job_id, token, outcome.result)
                elif isinstance(outcome, Failed):
                    charge = outcome.charge or retry_at is None
                    await self.store.fail(job_id, token, outcome.error, retry_at, charge=charge)
                elif isinstance(outcome, Cancelled):
                    await self.store.mark_cancelled(job_id, token)
                elif isinstance(outcome, Released):
                    await self.store.release(job_id, token)
                elif isinstance(outcome, Expired):
                    await self.store.mark_cancelled(job_id, token, model.EXPIRED)
                outage.succeeded()
                return
            except StaleClaim:
                log.warning("job %s: late write refused (another attempt owns it)", job_id)
                return
            except StoreUnavailable as exc:
                # Keep the outcome until the store is back or the lease runs out, after
                # which another attempt owns the job and the write would be refused anyway.
                if time.monotonic() - self.started > 3600:
                    log.error("job %s: outcome lost, store unavailable: %s", job_id, exc)
                    return
                await asyncio.sleep(outage.failed(exc))
            except JobwireError as exc:
                log.warning("job %s: outcome not recorded: %s", job_id, exc)
                return

    def _log(self, outcome: Outcome, retry_at: float | None) -> None:
        job = self.job
        extra: dict[str, Any] = {
            "job_id": job.id,
            "job": job.job,
            "attempt": job.attempts,
            "max_attempts": job.max_attempts,
        }
        head = f"job {job.id} ({job.job}) attempt {job.attempts}/{job.max_attempts}"
        if isinstance(outcome, Succeeded):
            log.debug("%s succeeded in %.3f s", head, time.monotonic() - self.started, extra=extra)
        elif isinstance(outcome, Failed):
            kind = str(outcome.error.get("type", "Error"))
            message = str(outcome.error.get("message", ""))
            extra.update(error_type=kind, error_message=message)
            if retry_at is not None and outcome.requested_at is not None:
                extra["retry_at"] = retry_at
                log.info(
                    "%s asked to run again in %.1f s (%s)",
                    head,
                    max(0.0, retry_at - time.time()),
                    "charged to its retries" if outcome.charge else "not charged",
                    extra=extra,
                )
            elif retry_at is not None:
                extra["retry_at"] = retry_at
                log.warning(
                    "%s failed: %s: %s; retrying in %.1f s",
                    head,
                    kind,
                    message,
                    max(0.0, retry_at - time.time()),
                    extra=extra,
                )
            else:
                why = "" if outcome.retryable else " (not retryable)"
                log.error(
                    "%s failed%s; the job has failed: %s: %s", head, why, kind, message, extra=extra
                )
            if outcome.error.get("traceback") and log.isEnabledFor(logging.DEBUG):
                log.debug("%s: %s", head, outcome.error["traceback"].rstrip(), extra=extra)
        elif isinstance(outcome, Cancelled):
            log.info("%s cancelled", head, extra=extra)
        elif isinstance(outcome, Released):
            log.info("%s handed back unfinished (the worker is stopping)", head, extra=extra)
        elif isinstance(outcome, Expired):
            log.info("%s not run: it expired before it started", head, extra=extra)
        else:
            extra.update(error_type="LeaseExpired", error_message="the lease was lost")
            log.warning(
                "%s: lease lost; this attempt stops and its result is discarded", head, extra=extra
            )

    def _retry_at(self, outcome: Failed) -> float | None:
        """When the job runs again, or None when this attempt ends it.

        The precedence (README, "Delivery semantics"): an error the job's rules make
        permanent ends it; a Retry it raised is honoured, an uncharged one even with no
        retries left; any other error retries with backoff while retries remain. A
        cancel request ends the job whatever this says (model.fail)."""
        if not outcome.retryable:
            return None
        spent = self.job.attempts >= self.job.max_attempts
        if outcome.requested_at is not None:
            return None if spent and outcome.charge else outcome.requested_at
        if spent:
            return None
        return time.time() + self.spec.options.backoff.delay(self.job.attempts)
