"""Commands that only read never create a store, and an unusable SQLite path is a
clear jobwire error naming the path and ``JOBWIRE_URL``, never a driver traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from jobwire import ConfigError, Jobwire, JobwireError
from jobwire.cli import (
    CancelOptions,
    HealthOptions,
    ListOptions,
    StatusOptions,
    TopOptions,
    run_cancel,
    run_health,
    run_ls,
    run_status,
    run_top,
)
from tests.cli.app import jobs as cli_jobs
from tests.cli.conftest import ROOT, Captured, jobwire_cmd, run_cli, subprocess_env

READ_ONLY = [
    ("ls",),
    ("status", "0192-some-job"),
    ("top", "--once"),
    ("health",),
    ("cancel", "0192-some-job"),
]


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: c[0])
def test_a_read_only_command_on_a_missing_sqlite_file_exits_1_and_creates_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    db = tmp_path / "nowhere.db"
    done = run_cli(*command, "--url", f"sqlite:///{db}")

    assert done.returncode == 1, done.stderr
    # The URL came from the flag, so the message names the flag.
    assert f"{db} (--url sqlite:///{db})" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # not the file, not its -wal or -shm


def test_the_store_named_by_jobwire_url_is_not_created_either(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    done = subprocess.run(
        jobwire_cmd("ls"),
        cwd=ROOT,
        env=subprocess_env(JOBWIRE_URL=f"sqlite:///{db}"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert f"no job store at {db} (JOBWIRE_URL=sqlite:///{db})" in done.stderr
    assert list(tmp_path.iterdir()) == []


async def test_read_only_commands_in_process_refuse_a_missing_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere.db'}"
    runs = [
        run_ls(ListOptions(url=url), (ls := Captured()).console),
        run_status(StatusOptions("0192", url=url), (status := Captured()).console),
        run_top(TopOptions(url=url, once=True), (top := Captured()).console),
        run_health(HealthOptions(url=url), (health := Captured()).console),
        run_cancel(CancelOptions("0192", url=url), (cancel := Captured()).console),
    ]
    for run, out in zip(runs, (ls, status, top, health, cancel), strict=True):
        assert await run == 1
        assert "no job store at" in out.text and "JOBWIRE_URL" in out.text
    assert files_in(tmp_path) == []


def files_in(directory: Path) -> list[Path]:
    return list(directory.iterdir())


def unusable_paths(tmp_path: Path) -> dict[str, Path]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    return {
        "missing directory": tmp_path / "missing" / "jobs.db",
        "a file for a directory": a_file / "jobs.db",
    }


@pytest.mark.parametrize("case", ["missing directory", "a file for a directory"])
def test_a_worker_and_a_submit_on_an_unusable_directory_exit_with_a_message(
    tmp_path: Path, case: str
) -> None:
    db = unusable_paths(tmp_path)[case]
    url = f"sqlite:///{db}"
    for argv in (("submit", "add", "a=1", "--url", url), ("worker", "tests.cli.app:jobs")):
        done = subprocess.run(
            jobwire_cmd(*argv),
            cwd=ROOT,
            env=subprocess_env(JOBWIRE_URL=url),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, (argv, done.stderr)
        named = "--url" if "--url" in argv else "JOBWIRE_URL"  # the one that gave the URL
        assert f"{named}: cannot use the SQLite database {db}" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("case", ["missing directory", "a file for a directory"])
async def test_opening_jobwire_on_an_unusable_directory_raises_a_config_error(
    tmp_path: Path, case: str
) -> None:
    db = unusable_paths(tmp_path)[case]
    with pytest.raises(ConfigError) as caught:
        async with Jobwire(f"sqlite:///{db}"):
            pass
    assert str(db) in str(caught.value) and "JOBWIRE_URL" in str(caught.value)
    assert isinstance(caught.value, JobwireError)
    # The app's lifespan (a server's start-up) says the same.
    app = cli_jobs.using(f"sqlite:///{db}")
    with pytest.raises(ConfigError, match="JOBWIRE_URL: cannot use the SQLite database"):
        async with app.lifespan():
            pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any directory")
async def test_a_directory_that_is_not_writable_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="is not writable"):
            async with Jobwire(f"sqlite:///{locked / 'jobs.db'}"):
                pass
    finally:
        locked.chmod(0o700)


async def test_a_file_that_is_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    db.write_bytes(b"this is not an SQLite database, not even close" * 100)
    with pytest.raises(ConfigError, match=f"JOBWIRE_URL: cannot use the SQLite database {db}"):
        async with Jobwire(f"sqlite:///{db}"):
            pass
