"""The installed ``jobwire`` command, driven by subprocess against a real worker process."""

from __future__ import annotations

import json
import signal

from tests.cli.conftest import Proc, jobwire_cmd, run_cli


def test_submit_follow_exits_0_and_prints_the_result(worker_process: Proc, db_url: str) -> None:
    done = run_cli("submit", "count", "n=3", "--url", db_url, "--follow")
    assert done.returncode == 0, done.stderr
    job_id, result = done.stdout.split()
    assert result == "3"
    assert 'output {"step":2}' in done.stderr
    assert "progress 3/3 (100%) step 3" in done.stderr
    status = run_cli("status", job_id, "--url", db_url, "--json")
    assert status.returncode == 0, status.stderr
    view = json.loads(status.stdout)
    assert (view["state"], view["result"], view["attempts"]) == ("succeeded", 3, 1)


def test_submit_follow_exits_1_when_the_job_fails(worker_process: Proc, db_url: str) -> None:
    done = run_cli(
        "submit", "boom", "message=no luck", "--app", "tests.cli.app:jobs", "--url", db_url, "-f"
    )
    assert done.returncode == 1, done.stderr
    assert "failed after 1 attempt: ValueError: no luck" in done.stderr
    assert len(done.stdout.split()) == 1  # the id only


def test_a_process_job_imports_the_app_from_the_working_directory(
    worker_process: Proc, db_url: str
) -> None:
    done = run_cli("submit", "square", "x=7", "--url", db_url, "--follow")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "49"


def test_arguments_a_job_refuses_fail_the_job_without_app(
    worker_process: Proc, db_url: str
) -> None:
    done = run_cli("submit", "add", "a=1", "b=two", "--url", db_url, "--follow")
    assert done.returncode == 1
    assert "ValidationError" in done.stderr


def test_a_standalone_worker_tunes_its_collector(worker_process: Proc, db_url: str) -> None:
    done = run_cli("submit", "collector", "--url", db_url, "--follow")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.split(maxsplit=1)[1])
    assert seen["threshold"][0] == 50_000
    assert seen["frozen"] > 10_000  # the start-up heap: modules, the app, its schemas


def test_status_ls_and_cancel_of_a_delayed_job(db_url: str) -> None:
    # --force: no server or worker has registered "add" in this new store.
    submitted = run_cli(
        "submit", "add", "a=1", "b=2", "--url", db_url, "--delay", "3600", "--force"
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()

    status = run_cli("status", job_id, "--url", db_url)
    assert status.returncode == 0
    assert "queued" in status.stdout
    assert "no live worker runs job 'add' on queue 'default'" in status.stdout

    listed = run_cli("ls", "--url", db_url, "--state", "queued", "--json")
    assert [item["id"] for item in json.loads(listed.stdout)["items"]] == [job_id]

    first = run_cli("cancel", job_id, "--url", db_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"cancelled {job_id}"

    second = run_cli("cancel", job_id, "--url", db_url)
    assert second.returncode == 1
    assert f"job {job_id} is cancelled; cannot cancel it" in second.stderr

    missing = run_cli("status", "0000", "--url", db_url)
    assert missing.returncode == 1
    assert "job 0000 not found" in missing.stderr


def test_invalid_arguments_with_app_exit_2(db_url: str) -> None:
    done = run_cli("submit", "add", "a=1", "b=x", "--app", "tests.cli.app:jobs", "--url", db_url)
    assert done.returncode == 2
    assert "b: Input should be a valid integer" in done.stderr
    assert done.stdout == ""


def test_the_worker_refuses_a_fastapi_app(db_url: str) -> None:
    done = run_cli("worker", "tests.cli.app:web", "--url", db_url)
    assert done.returncode == 2
    assert "is a fastapi.applications.FastAPI, not a Jobwire instance" in done.stderr
    assert "tests.cli.app:jobs" in done.stderr


def test_the_worker_drains_and_exits_0_on_sigint(db_url: str) -> None:
    proc = Proc(jobwire_cmd("worker", "tests.cli.app:jobs", "--url", db_url, "--queues", "a,b"))
    try:
        started = proc.wait_for(r"worker \S+ started: queues=\['a', 'b'\]")
        assert started
        proc.signal(signal.SIGINT)
        assert proc.wait() == 0, proc.report()
        assert any("stopped" in line for line in proc.stderr)
    finally:
        proc.kill()


def test_a_running_job_is_cancelled_from_the_cli(worker_process: Proc, db_url: str) -> None:
    follower = Proc(jobwire_cmd("submit", "until_cancelled", "--url", db_url, "--follow"))
    try:
        job_id = follower.wait_for(r"^[0-9a-f-]{36}$", stream="stdout").group(0)
        follower.wait_for(r"attempt 1 started")
        cancelled = run_cli("cancel", job_id, "--url", db_url)
        assert cancelled.returncode == 0, cancelled.stderr
        assert "cancel requested" in cancelled.stdout
        assert follower.wait() == 1, follower.report()
        assert any(line.startswith("cancelled after 1 attempt") for line in follower.stderr)
    finally:
        follower.kill()


def test_submit_follow_says_no_live_worker_runs_the_job_then_a_worker_runs_it(
    db_url: str,
) -> None:
    # --force: nothing has registered "count" in this new store yet.
    follower = Proc(jobwire_cmd("submit", "count", "n=2", "--url", db_url, "--force", "-f"))
    worker: Proc | None = None
    try:
        follower.wait_for(r"^[0-9a-f-]{36}$", stream="stdout")
        follower.wait_for(
            r"warning: no live worker runs job 'count' on queue 'default': "
            r"it stays queued until one starts"
        )
        worker = Proc(
            jobwire_cmd("worker", "tests.cli.app:jobs", "--url", db_url, "--processes", "1")
        )
        follower.wait_for(r"attempt 1 started")
        assert follower.wait() == 0, follower.report()
        assert follower.stdout[-1] == "2"
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.report()
    finally:
        follower.kill()
        if worker is not None:
            worker.kill()


def test_submit_without_app_refuses_a_typo_once_a_worker_registered_the_names(
    worker_process: Proc, db_url: str
) -> None:
    done = run_cli("submit", "sqare", "x=3", "--url", db_url)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "unknown job 'sqare'; did you mean 'square'?" in done.stderr
    assert "known jobs: add, boom, collector, count, flaky, square, until_cancelled" in done.stderr
