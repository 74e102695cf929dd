"""An app with schedules, for the CLI tests: ``--app tests.cli.schedules_app:jobs``."""

from __future__ import annotations

from jobwire import Jobwire

jobs = Jobwire(embedded_workers=False)


@jobs.job(retries=2, timeout=30, queue="reports")
async def report(day: str = "today") -> str:
    return day


@jobs.job
async def cleanup() -> None:
    return None


jobs.schedule(
    "30 2 * * *", report, {"day": "yesterday"}, name="nightly-report", timezone="Europe/Paris"
)
jobs.schedule("*/5 * * * *", cleanup)
