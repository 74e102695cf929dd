"""Moves workflows on: every server and worker runs one, no leader.

Each pass reads the running workflows and, for each, where its steps stand (each step's
job is found by its idempotency key ``workflow:<id>:<step>``). A step whose every
predecessor succeeded is enqueued under that key with their results, so processes that
race for it all get the same one job. A step after a failed or cancelled one is never
enqueued: it shows ``cancelled`` with reason ``dependency failed``. Once every step has
ended the workflow ends, succeeded or failed, once (the store's compare-and-set).

A process killed anywhere in a pass leaves the workflow as stored: the next pass
(anyone's) finds the jobs already enqueued by their keys and goes on from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jobwire.errors import (
    AlreadyTerminal,
    InvalidArguments,
    JobNotFound,
    JobwireError,
    StoreUnavailable,
    UnknownJobError,
)
from jobwire.model import Job, State
from jobwire.services.base import Service
from jobwire.store.base import Store, WorkflowRecord, WorkflowState
from jobwire.workflows import READY, Step, StepStatus, outcome, statuses, step_key

log = logging.getLogger("jobwire.services")

# Enqueue a step's job (with these arguments, under its key); answers the job.
Start = Callable[[WorkflowRecord, Step, dict[str, Any]], Awaitable[Job]]


async def read_statuses(
    store: Store, workflow: WorkflowRecord, ended: dict[str, Job] | None = None
) -> list[StepStatus]:
    """Where each step of the workflow stands, from its job when it has one.

    Only a step whose predecessors all succeeded can have a job, so only those are
    looked up (a fan-in is not, while its group runs); ``ended``, when given, keeps the
    steps' jobs that have ended between calls, as those never change again."""
    steps = [Step.from_dict(s) for s in workflow.steps]
    jobs: dict[str, Job | None] = {}
    succeeded: set[str] = set()
    for step in steps:
        if not all(name in succeeded for name in step.after):
            continue
        job = ended.get(step.name) if ended is not None else None
        if job is None:
            job_id = await store.idempotent_job(workflow.owner, step_key(workflow.id, step.name))
            job = None if job_id is None else await store.get(job_id)
            if job is not None and job.terminal and ended is not None:
                ended[step.name] = job
        jobs[step.name] = job
        if job is not None and job.state is State.SUCCEEDED:
            succeeded.add(step.name)
    return statuses(steps, jobs, workflow.state.value)


async def cancel_steps(store: Store, found: Sequence[StepStatus]) -> int:
    """Cancel every step job not yet ended; answers how many."""
    cancelled = 0
    for status in found:
        if status.job is not None and not status.ended:
            try:
                await store.cancel(status.job.id)
            except (AlreadyTerminal, JobNotFound):
                continue  # it ended meanwhile
            cancelled += 1
    return cancelled


class WorkflowService(Service):
    name = "workflows"

    def __init__(
        self,
        store: Store,
        start: Start,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval)
        self.store = store
        self.start_step = start
        self.clock = clock
        # Per running workflow, its steps' jobs that have ended (they never change).
        self._ended: dict[str, dict[str, Job]] = {}

    async def run_once(self) -> int:
        started = 0
        running = await self.store.open_workflows()
        self._ended = {w.id: self._ended.get(w.id, {}) for w in running}
        for workflow in running:
            try:
                started += await self.advance(workflow)
            except StoreUnavailable:
                raise
            except JobwireError as exc:
                log.error("workflow %s: not moved on: %s", workflow.id, exc)
        return started

    async def advance(self, workflow: WorkflowRecord) -> int:
        """Enqueue the steps that are ready, or end the workflow; answers how many steps
        were enqueued."""
        found = await read_statuses(self.store, workflow, self._ended.get(workflow.id))
        results = {s.step.name: s.job.result for s in found if s.job is not None}
        ready = [s.step for s in found if s.state == READY]
        started = 0
        for step in ready:
            arguments = step.arguments([results[name] for name in step.after])
            try:
                await self.start_step(workflow, step, arguments)
                started += 1
            except UnknownJobError:
                # Not a job this process registers: one that does starts it.
                log.debug("workflow %s: step %s left to another process", workflow.id, step.name)
                continue
            except InvalidArguments as exc:
                # What a predecessor returned does not fit: no pass will do better.
                log.error("workflow %s: step %s cannot start: %s", workflow.id, step.name, exc)
                await self.store.end_workflow(workflow.id, WorkflowState.FAILED, self.clock())
                return 0
        if ready:
            now = await self.store.get_workflow(workflow.id)
            if now is not None and now.state is WorkflowState.CANCELLED:
                # Cancelled while this pass enqueued: the cancel may not have seen these.
                await cancel_steps(self.store, await read_statuses(self.store, now))
            return started
        ended = outcome(found)
        if ended is not None:
            await self.store.end_workflow(workflow.id, WorkflowState(ended), self.clock())
        return 0
