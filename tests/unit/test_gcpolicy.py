"""The server's collector tuning: applied by the app's lifespan, and only when asked."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import asyncio, gc, json
from jobwire import Jobwire

async def main():
    jobs = Jobwire("sqlite:///" + __import__("sys").argv[1])
    before = gc.get_threshold()
    async with jobs.lifespan():
        inside = gc.get_threshold()
        frozen = gc.get_freeze_count()
    print(json.dumps({"before": before, "inside": inside, "frozen": frozen}))

asyncio.run(main())
"""


def probe(tmp_path: object, tuning: str) -> dict[str, object]:
    env = {"JOBWIRE_GC_TUNING": tuning, "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, f"{tmp_path}/gc.db"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_the_lifespan_freezes_the_startup_heap_and_raises_the_young_threshold(
    tmp_path: object,
) -> None:
    result = probe(tmp_path, "true")
    before, inside = result["before"], result["inside"]
    assert isinstance(before, list) and isinstance(inside, list)
    assert inside[0] == 50_000
    assert inside[1:] == before[1:]  # the older generations keep their thresholds
    assert isinstance(result["frozen"], int) and result["frozen"] > 10_000


def test_the_setting_off_leaves_the_collector_alone(tmp_path: object) -> None:
    result = probe(tmp_path, "false")
    assert result["inside"] == result["before"]
    assert result["frozen"] == 0
