"""``jobwire retry ID``: a failed or cancelled job again, as a new job; and ``--url``
errors that name ``--url`` when the flag gave the URL."""

from __future__ import annotations

from pathlib import Path

from jobwire.cli import CancelOptions, RetryOptions, run_cancel, run_retry
from tests.cli.conftest import Captured, run_cli
from tests.cli.test_commands import stored, submit


async def test_retry_makes_a_new_job_with_the_same_arguments_once(
    db_url: str, err: Captured
) -> None:
    _, job_id = await submit(
        db_url, Captured(), err, job="add", args={"a": 1, "b": 2}, delay=60.0, force=True
    )
    assert await run_cancel(CancelOptions(job_id, url=db_url), Captured().console) == 0

    first, again = Captured(), Captured()
    assert await run_retry(RetryOptions(job_id, url=db_url), first.console) == 0
    assert await run_retry(RetryOptions(job_id, url=db_url), again.console) == 0

    assert first.text.startswith(f"retried {job_id} as ")
    new_id = first.text.split()[-1]
    assert again.text.strip() == f"{job_id} was already retried as {new_id}"
    new = await stored(db_url, new_id)
    assert new["job"] == "add" and new["args"] == {"a": 1, "b": 2}
    assert new["state"] == "queued" and new["id"] != job_id


async def test_retry_of_a_job_not_ended_badly_or_unknown_exits_1(
    db_url: str, err: Captured
) -> None:
    _, job_id = await submit(
        db_url, Captured(), err, job="add", args={"a": 1, "b": 2}, delay=60.0, force=True
    )

    queued, unknown = Captured(), Captured()
    assert await run_retry(RetryOptions(job_id, url=db_url), queued.console) == 1
    assert await run_retry(RetryOptions("01a2-unknown", url=db_url), unknown.console) == 1

    assert f"job {job_id} is queued; cannot retry it" in queued.text
    assert "only failed or cancelled jobs are retried" in queued.text
    assert "job 01a2-unknown not found" in unknown.text
    view = await stored(db_url, job_id)
    assert view["state"] == "queued"


def test_url_errors_name_the_flag_when_the_flag_was_used(tmp_path: Path) -> None:
    db = tmp_path / "nowhere.db"
    missing = run_cli("retry", "0192-some-job", "--url", f"sqlite:///{db}")
    unsupported = run_cli("ls", "--url", "bogus://x")

    assert missing.returncode == 1
    assert f"no job store at {db} (--url sqlite:///{db})" in missing.stderr
    assert unsupported.returncode == 2
    assert unsupported.stderr.startswith("error: --url: unsupported store 'bogus'")
    assert "JOBWIRE_URL:" not in unsupported.stderr
