"""``jobwire demo``: serves on loopback, answers health checks, stops cleanly on a signal."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Proc, jobwire_cmd, subprocess_env


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_serves_on_loopback_and_exits_0_on_a_signal(tmp_path: Path, stop: int) -> None:
    db = tmp_path / "demo.db"
    proc = Proc(jobwire_cmd("demo", "--port", "0", "--db", str(db)), cwd=tmp_path)
    try:
        base = proc.wait_for(r"running at (http://127\.0\.0\.1:\d+)", stream="stdout").group(1)
        proc.wait_for(r"too_slow:\s+http://127\.0\.0\.1:\d+/jobs/[0-9a-f-]{36}", stream="stdout")
        ui = proc.wait_for(r"dashboard, live:\s+(http://\S+)", stream="stdout").group(1)
        assert ui == f"{base}/jobs/ui"
        proc.wait_for(r"WARNING.*dashboard is open \(JOBWIRE_DASHBOARD_OPEN=1\)")
        with httpx.Client(base_url=base, timeout=10) as client:
            live = client.get("/jobs/health/live")
            assert (live.status_code, live.json()) == (200, {"status": "ok"})
            listed = client.get("/jobs").json()["items"]
            names = sorted(item["job"] for item in listed)
            assert names == ["crawl", "crunch", "flaky", "too_slow"]
            assert client.get("/docs").status_code == 200
            dashboard = client.get("/jobs/ui")  # open on the demo, for a look on this machine
            assert dashboard.status_code == 200 and "jobwire dashboard" in dashboard.text
            shown = client.get("/jobs/ui/api/jobs").json()["items"]
            assert sorted(item["job"] for item in shown) == names
        assert db.exists()
        proc.signal(stop)
        assert proc.wait() == 0, proc.report()
    finally:
        proc.kill()


def test_the_commands_the_demo_prints_work_as_printed(tmp_path: Path) -> None:
    proc = Proc(jobwire_cmd("demo", "--port", "0", "--db", str(tmp_path / "demo.db")), cwd=tmp_path)
    try:
        curl = proc.wait_for(r"^\s+(curl .*)$", stream="stdout").group(1)
        follow = proc.wait_for(r"^\s+(\S+ submit crawl .* --follow)$", stream="stdout").group(1)

        def shell(line: str) -> subprocess.CompletedProcess[str]:
            # A shell whose PATH has no jobwire on it, in another directory.
            return subprocess.run(
                ["bash", "-c", line],
                cwd=tmp_path.root,
                env=subprocess_env(PATH="/usr/bin:/bin"),
                capture_output=True,
                text=True,
                timeout=60,
            )

        submitted = shell(curl)
        assert submitted.returncode == 0, submitted.stderr
        assert json.loads(submitted.stdout)["job"] == "crunch"
        followed = shell(follow)  # exits 0 once the job succeeded
        assert followed.returncode == 0, f"{follow}\n{followed.stdout}{followed.stderr}"
        assert "succeeded" in followed.stdout + followed.stderr
    finally:
        proc.kill()
