"""A standalone worker for the chaos tests: ``python -m tests.chaos.worker_main``.

It runs the jobs of :mod:`tests.chaos.app` until SIGTERM or SIGINT, logging to stderr
(the tests wait on its "started" and "stopped" lines).
"""

from __future__ import annotations

import asyncio
import logging
import os

from tests.chaos.app import jobs


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {os.getpid()} %(name)s %(levelname)s %(message)s",
    )
    asyncio.run(jobs.run_worker())


if __name__ == "__main__":
    main()
