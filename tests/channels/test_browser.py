"""A real browser follows a job with its own EventSource, across a server restart.

Headless Debian chromium driven by Playwright (never ``playwright install``: the system
browser is used). Skipped when either is missing, unless ``JOBWIRE_REQUIRE_SERVICES`` is
set, in which case their absence fails the run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.channels.conftest import Server, log_of, submit

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_browser() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install playwright)")
    if not missing:
        return
    reason = "a browser test needs " + " and ".join(missing)
    if os.environ.get("JOBWIRE_REQUIRE_SERVICES"):
        pytest.fail(reason + "; JOBWIRE_REQUIRE_SERVICES is set, so this is a failure")
    pytest.skip(reason)


async def test_a_browser_eventsource_follows_a_job_across_a_server_restart_and_stops_at_204(
    servers: Callable[..., Server], tmp_path: Path
) -> None:
    require_browser()
    from playwright.async_api import async_playwright

    server = servers(JOBWIRE_LEASE_SECONDS="2")
    gate = tmp_path / "gate"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        job_id = await submit(client, "gated", {"before": 3, "after": 3, "gate": str(gate)})

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page()
                statuses: list[int] = []  # of the page's requests to the events route
                page.on(
                    "response",
                    lambda r: statuses.append(r.status) if r.url.endswith("/events") else None,
                )
                await page.goto(f"{server.url}/follow?job={job_id}")
                # queued, started and the three outputs before the gate: the job is mid-way.
                await page.wait_for_function(
                    "document.querySelectorAll('#events li').length >= 5", timeout=30_000
                )

                server.kill()
                await asyncio.to_thread(server.start)  # the same port and database
                gate.touch()

                # EventSource.CLOSED: it reconnected, read the rest, and the 204 that
                # followed the terminal event told it to stop reconnecting.
                await page.wait_for_function("window.source.readyState === 2", timeout=60_000)
                shown = await page.eval_on_selector_all(
                    "#events li",
                    "items => items.map(i => [i.dataset.id, i.dataset.type, i.textContent])",
                )
                opens = int(await page.inner_text("#opens"))
            finally:
                await browser.close()

        log = await log_of(client, job_id)

    assert [int(seq) for seq, _, _ in shown] == [item["seq"] for item in log]
    assert [kind for _, kind, _ in shown] == [item["type"] for item in log]
    assert [json.loads(text) for _, _, text in shown] == log
    assert shown[-1][1] == "succeeded"
    # The first run died with its server and was handed back uncharged: run 2 is attempt 1.
    assert [item["data"]["attempt"] for item in log if item["type"] == "started"] == [1, 1]
    queued = [item["data"] for item in log if item["type"] == "queued"]
    assert any(data.get("lost") is True for data in queued), queued
    assert opens >= 2  # it did reconnect after the server died
    assert statuses[-1] == 204 and set(statuses[:-1]) == {200}, statuses
