"""The app of the tracing tests: ``jobwire worker tests.tracing.app:jobs``.

With ``SPANS_FILE`` set, the worker process records its spans with the OpenTelemetry
SDK's in-memory exporter and writes them to that file, as JSON, when it exits.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os

from jobwire import JobContext, Jobwire

jobs = Jobwire(process_concurrency=1, shutdown_grace_seconds=5.0)


@jobs.job(retries=1, backoff=0.0)
def square(ctx: JobContext, n: int) -> int:
    """A process job whose first attempt fails, so that two attempts are traced."""
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return n * n


def _record_spans(path: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    def dump() -> None:
        spans = [
            {
                "name": span.name,
                "trace_id": f"{span.context.trace_id:032x}",
                "span_id": f"{span.context.span_id:016x}",
                "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                "attributes": dict(span.attributes or {}),
                "status": span.status.status_code.name,
            }
            for span in exporter.get_finished_spans()
        ]
        with open(path, "w") as out:
            json.dump(spans, out)

    atexit.register(dump)


# Only the worker itself: its job processes import this module too.
if os.environ.get("SPANS_FILE") and multiprocessing.parent_process() is None:
    _record_spans(os.environ["SPANS_FILE"])
