"""OpenTelemetry tracing, when ``opentelemetry-api`` is installed (``jobwire[otel]``).

A submit stores the W3C trace context it was made in (``traceparent``, ``tracestate``)
with the job, in its options under ``"trace"``; each attempt, wherever a worker claims
it, runs in a span whose parent is that context, so a trace shows the request that
submitted the job and every attempt under it. Without the package every function here
does nothing, and jobwire runs as before.

The context is the current one (an instrumented server's request span, or the caller's
own span around ``enqueue``); a server that is not instrumented hands over the
``traceparent`` header the client sent.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from jobwire.model import Job

OPTION = "trace"  # the key of the stored context in a job's options


@functools.cache
def _otel() -> tuple[ModuleType, ModuleType, ModuleType] | None:
    """``(context, propagate, trace)`` of opentelemetry, imported on first use (it is
    not free to import), or None when the optional extra is not installed."""
    try:
        from opentelemetry import context, propagate, trace
    except ImportError:
        return None
    return context, propagate, trace


def capture(headers: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The trace context to store with a new job, or None when there is none."""
    otel = _otel()
    if otel is None:
        return None
    otel_context, propagate, trace = otel
    ctx = otel_context.get_current()
    if headers is not None and not trace.get_current_span(ctx).get_span_context().is_valid:
        ctx = propagate.extract(headers)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return carrier or None


@contextlib.contextmanager
def attempt_span(job: Job) -> Iterator[Any]:
    """The span of one attempt, a child of the context stored with the job."""
    otel = _otel()
    if otel is None:
        yield None
        return
    _, propagate, trace = otel
    stored = job.options.get(OPTION)
    parent = propagate.extract(stored) if isinstance(stored, Mapping) else None
    tracer = trace.get_tracer("jobwire")
    attributes = {
        "jobwire.job_id": job.id,
        "jobwire.job": job.job,
        "jobwire.attempt": job.attempts,
        "jobwire.queue": job.queue,
    }
    with tracer.start_as_current_span(
        f"jobwire.attempt {job.job}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def record_outcome(span: Any, outcome: str, error: Mapping[str, Any] | None = None) -> None:
    """Say on the attempt's span how it ended (``error``: the job's error)."""
    otel = _otel()
    if span is None or otel is None:
        return
    trace = otel[2]
    span.set_attribute("jobwire.outcome", outcome)
    if error is not None:
        message = f"{error.get('type')}: {error.get('message')}"
        span.set_status(trace.Status(trace.StatusCode.ERROR, message))
