"""``jobwire schedules``, ``jobwire cancel`` with filters and ``jobwire jobs``, through the
real command line (typer) on a SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobwire.cli import cli
from jobwire.model import State
from jobwire.store.base import ListQuery
from tests.cli.schedules_app import jobs as schedules_jobs

APP = "tests.cli.schedules_app:jobs"


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A store that exists (the read-only commands refuse to create one)."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"

    async def create() -> None:
        async with schedules_jobs.using(url):
            pass

    asyncio.run(create())
    return url


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"TERMINAL_WIDTH": "200"})
    return result.exit_code, result.output


def states(url: str) -> list[State]:
    async def read() -> list[State]:
        async with schedules_jobs.using(url) as jobs:
            page = await jobs.store.list(ListQuery())
            return sorted(job.state for job in page.items)

    return asyncio.run(read())


def test_schedules_are_listed_then_paused_and_resumed(url: str) -> None:
    code, text = run("schedules", "--app", APP, "--url", url, "--json")
    assert code == 0, text
    items = {item["name"]: item for item in json.loads(text)["items"]}
    assert set(items) == {"nightly-report", "cleanup"}
    assert items["nightly-report"]["timezone"] == "Europe/Paris"
    assert items["nightly-report"]["next_fire_at"] is not None
    assert items["cleanup"]["paused"] is False

    assert run("schedules", "pause", "cleanup", "--app", APP, "--url", url) == (
        0,
        "paused cleanup\n",
    )
    code, text = run("schedules", "--app", APP, "--url", url)
    assert code == 0
    [line] = [line for line in text.splitlines() if line.startswith("cleanup")]
    assert "paused" in line and "*/5 * * * *" in line
    assert run("schedules", "resume", "cleanup", "--app", APP, "--url", url)[0] == 0
    listed = json.loads(run("schedules", "--app", APP, "--url", url, "--json")[1])
    assert {i["name"]: i["paused"] for i in listed["items"]}["cleanup"] is False


def test_pausing_an_undeclared_schedule_names_the_declared_ones(url: str) -> None:
    code, text = run("schedules", "pause", "nope", "--app", APP, "--url", url)
    assert code == 2
    assert "no schedule 'nope'" in text and "cleanup, nightly-report" in text


def test_schedules_need_the_app_that_declares_them(url: str) -> None:
    code, text = run("schedules", "--url", url)
    assert code == 2 and "--app" in text


def test_cancel_by_filters_counts_then_cancels_only_the_matching_jobs(url: str) -> None:
    async def submit() -> None:
        async with schedules_jobs.using(url) as jobs:
            for _ in range(3):
                await jobs.enqueue("cleanup")
            await jobs.enqueue("report", {"day": "x"})

    asyncio.run(submit())
    assert run("cancel", "--job", "cleanup", "--dry-run", "--url", url) == (
        0,
        "3 jobs would be cancelled\n",
    )
    assert states(url) == [State.QUEUED] * 4
    code, text = run("cancel", "--job", "cleanup", "--state", "queued", "--url", url)
    assert (code, text.split(" (")[0]) == (0, "cancelled 3 jobs")
    assert states(url) == sorted([State.QUEUED] + [State.CANCELLED] * 3)
    assert (
        run(
            "cancel", "--queue", "reports", "--created-after", "2000-01-01T00:00:00Z", "--url", url
        )[0]
        == 0
    )
    assert states(url) == [State.CANCELLED] * 4


def test_purge_deletes_the_matching_queued_jobs(url: str) -> None:
    async def submit() -> None:
        async with schedules_jobs.using(url) as jobs:
            for _ in range(2):
                await jobs.enqueue("cleanup")
            await jobs.enqueue("report", {"day": "x"})

    asyncio.run(submit())
    assert run("purge", "--job", "cleanup", "--dry-run", "--url", url) == (
        0,
        "2 queued jobs would be deleted\n",
    )
    assert run("purge", "--job", "cleanup", "--url", url) == (0, "deleted 2 queued jobs\n")
    assert states(url) == [State.QUEUED]
    code, text = run("purge", "--url", url)
    assert code == 2 and "at least one filter" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cancel", "--state", "failed"], "expected queued or running"),
        (["cancel", "--created-after", "yesterday"], "expected an ISO 8601 time"),
        (["cancel", "--created-after", "2030-01-01T00:00:00"], "give a time zone"),
        (["cancel"], "give a job ID, or filters"),
    ],
)
def test_cancel_refuses_bad_filters(url: str, args: list[str], message: str) -> None:
    code, text = run(*args, "--url", url)
    assert code == 2, text
    assert message in " ".join(text.split())


def test_jobs_lists_the_registered_jobs_with_their_options(url: str) -> None:
    code, text = run("jobs", "--app", APP, "--json")
    assert code == 0, text
    items = {item["job"]: item for item in json.loads(text)["items"]}
    report = items["report"]
    assert (report["queue"], report["retries"], report["timeout"]) == ("reports", 2, 30)
    assert report["schedules"] == ["nightly-report"]
    assert items["cleanup"]["schedules"] == ["cleanup"]
    code, table = run("jobs", "--app", APP)
    assert code == 0 and "report" in table and "reports" in table


def test_jobs_without_app_lists_the_names_the_store_recorded(url: str) -> None:
    async def record() -> None:
        async with schedules_jobs.using(url) as jobs:
            await jobs.store.record_job_names(["cleanup", "report"], 1_700_000_000.0)

    asyncio.run(record())
    code, text = run("jobs", "--url", url, "--json")
    assert code == 0, text
    assert json.loads(text)["items"] == [
        {"job": "cleanup", "last_seen": "2023-11-14T22:13:20Z"},
        {"job": "report", "last_seen": "2023-11-14T22:13:20Z"},
    ]
