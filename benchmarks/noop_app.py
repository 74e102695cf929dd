"""Jobs used by the benchmarks: a no-op, and a job that stamps when it starts."""

from __future__ import annotations

import socket
import time

from jobwire import JobContext, Jobwire

jobs = Jobwire()

_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


@jobs.job
async def noop(ctx: JobContext) -> None:
    return None


@jobs.job
async def stamp(ctx: JobContext, port: int) -> None:
    # The job's first statement: its own clock stamp, sent back over loopback UDP.
    _udp.sendto(f"{ctx.job_id} {time.time()}".encode(), ("127.0.0.1", port))
