"""How jobwire's processes keep the collector's pauses short and its work small.

CPython's full (oldest-generation) collection walks every tracked object. A server with
thousands of open SSE or WebSocket streams holds hundreds of objects per connection, and
objects that happen to be in flight when a young collection runs are promoted, so steady
traffic keeps triggering full collections whose pause grows with the connection count:
at 5,000 streams, pauses of most of a second, all of it added to event delivery.

A worker meets the other side of the same collector: every job leaves a handful of
short-lived objects (a task, its attempt, the job's record before and after), and a
young collection every 700 allocations walks the ones in flight; at thousands of jobs a
second that walking was a tenth of a standalone worker's CPU.

Two long-standing remedies, applied once per process when the app starts (``lifespan``)
or a standalone worker starts (``run_worker``):

- ``gc.freeze()``: what exists at start-up (modules, routes, schemas) lives as long as the
  process; moving it to the permanent generation takes it out of every later collection.
- a higher first threshold: young collections run less often, so fewer short-lived objects
  are caught in flight and promoted; each one still walks only the young objects.

Reference counting still frees every acyclic object at once; only cycles wait longer.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("jobwire")

YOUNG_THRESHOLD = 50_000  # CPython's default is 700
_applied = False


def tune_collector() -> None:
    """Apply the policy once in this process (idempotent); keeps the older thresholds."""
    global _applied
    if _applied:
        return
    _applied = True
    _, middle, old = gc.get_threshold()
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    log.debug("collector tuned: %d objects frozen", gc.get_freeze_count())
