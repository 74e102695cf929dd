"""What a chaos job writes about itself, outside the store it is tested against.

Each attempt appends a line per start and per end, ``start <job id> <attempt> <pid>`` /
``end …``, to the file named by ``CHAOS_SIDE_EFFECTS``, with ``O_APPEND`` so that lines
from several processes never interleave. A job may *run* twice (two ``start`` lines);
it must *complete* once (one ``succeeded`` event in the store).
"""

from __future__ import annotations

import os

from jobwire import JobContext

SIDE_EFFECTS_ENV = "CHAOS_SIDE_EFFECTS"


def record(what: str, ctx: JobContext) -> None:
    path = os.environ.get(SIDE_EFFECTS_ENV)
    if not path:
        return
    line = f"{what} {ctx.job_id} {ctx.attempt} {os.getpid()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def has_run_before(job_id: str) -> bool:
    """True when an earlier attempt of this job left a ``start`` line."""
    path = os.environ.get(SIDE_EFFECTS_ENV)
    if not path or not os.path.exists(path):
        return False
    with open(path) as f:
        return any(line.split()[:2] == ["start", job_id] for line in f)
