"""The jobs the namespaced hosts run: ``jobwire worker tests.hosts.app:jobs``.

The store comes from ``JOBWIRE_URL``; each host's name from ``HOST_NAME``. Files shared
by every host (the hosts are namespaces of one machine) let the test steer the job and
see what it did, whatever the store later accepted from it:

- ``HOSTS_RELEASE``: a directory; the job beats until a file named after its host
  appears there, then finishes;
- ``HOSTS_SIDE_EFFECTS``: a job appends ``end <host> <job id> <attempt>`` when its code
  has run to the end.
"""

from __future__ import annotations

import os
import time

from jobwire import JobContext, Jobwire

HOST_ENV = "HOST_NAME"
RELEASE_ENV = "HOSTS_RELEASE"
SIDE_EFFECTS_ENV = "HOSTS_SIDE_EFFECTS"

jobs = Jobwire()


@jobs.job(executor="thread", retries=2)
def hop(ctx: JobContext, every: float) -> dict[str, object]:
    """A progress event naming the host every ``every`` s until released; one more then."""
    host = os.environ[HOST_ENV]
    beat = 0
    while True:
        beat += 1
        released = os.path.exists(os.path.join(os.environ[RELEASE_ENV], host))
        ctx.progress(beat, message=host)
        if released:
            break
        time.sleep(every)
    line = f"end {host} {ctx.job_id} {ctx.attempt}\n".encode()
    fd = os.open(os.environ[SIDE_EFFECTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return {"host": host, "attempt": ctx.attempt}
