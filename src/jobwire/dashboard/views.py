"""What the dashboard's pages read, as JSON: times as epoch seconds for the page's own
formatting, owners shown (the dashboard is where an operator sees whose job it is)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobwire.model import Event, Job
from jobwire.store.insight import Attempt

if TYPE_CHECKING:
    from jobwire.store.base import WorkerInfo


def boundary_id(at: float) -> str:
    """The lowest job id that can be made after epoch second ``at`` (UUIDv7 ids begin
    with their millisecond): ``id < boundary_id(t)`` ⇔ made at or before ``t``."""
    ms = max(0, int(at * 1000) + 1)
    text = f"{ms & ((1 << 48) - 1):012x}"
    return f"{text[:8]}-{text[8:]}-7000-8000-000000000000"


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "job": job.job,
        "state": job.state.value,
        "queue": job.queue,
        "owner": job.owner,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "crashes": job.crashes,
        "max_crashes": job.max_crashes,
        "progress": job.progress.as_dict() if job.progress is not None else None,
        "cancel_requested": job.cancel_requested,
        "created_at": job.created_at,
        "scheduled_at": job.scheduled_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def job_detail(
    job: Job,
    events: Sequence[Event],
    attempts: Sequence[Attempt],
    retried_by: str | None,
    no_worker: bool = False,
) -> dict[str, Any]:
    error = job.error
    retry_of = job.options.get("retry_of")
    workflow = job.options.get("workflow")
    return {
        **job_summary(job),
        "args": job.args,
        "result": job.result,
        "error": None
        if error is None
        else {
            "type": str(error.get("type", "Error")),
            "message": str(error.get("message", "")),
            "traceback": error.get("traceback"),
        },
        "worker": job.worker_id,
        "retry_of": retry_of if isinstance(retry_of, str) else None,
        "retried_by": retried_by,
        # The workflow this job is a step of, if any.
        "workflow": {"id": workflow, "step": job.options.get("step")}
        if isinstance(workflow, str)
        else None,
        "no_worker": no_worker,  # queued, and no live worker runs its name on its queue
        "attempt_list": [a.as_dict() for a in attempts],
        "events": [e.as_dict() for e in events],
        "last_seq": job.last_seq,
        "events_complete": len(events) == job.last_seq,
    }


def worker_view(info: WorkerInfo, now: float, lease: float, *, show_jobs: bool) -> dict[str, Any]:
    return {
        "id": info.id,
        "host": info.host,
        "pid": info.pid,
        "queues": list(info.queues),
        "concurrency": info.concurrency,
        "version": info.version,
        "started_at": info.started_at,
        "last_heartbeat": info.last_heartbeat,
        "running": len(info.running),
        # Ids of jobs of every owner: shown only to a viewer who may see every job.
        "running_jobs": list(info.running) if show_jobs else [],
        "lost": info.is_lost(lease, now),
    }
