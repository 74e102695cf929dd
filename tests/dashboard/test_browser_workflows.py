"""The workflow page in a real browser (headless Debian chromium): a workflow submitted
over HTTP is drawn step by step with each step's state, live; a failed step's
dependants show why they never ran; a step's job page links back; the workflow is
cancelled from the page."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.channels.test_browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.dashboard.app import PREFIX, build, jobs
from tests.dashboard.conftest import KEYS, UI
from tests.dashboard.test_browser import shoot
from tests.dashboard.test_browser_schedules import WAIT, sign_in
from tests.support.server import ServerThread

GRAPH = {
    "steps": [
        {"name": "first", "job": "quick", "args": {"x": 1}},
        {"name": "left", "job": "quick", "args": {"x": 2}, "after": ["first"]},
        {"name": "right", "job": "quick", "args": {"x": 3}, "after": ["first"]},
        {"name": "join", "job": "boom", "args": {"reason": "no"}, "after": ["left", "right"]},
        {"name": "last", "job": "quick", "args": {"x": 4}, "after": ["join"]},
    ]
}


async def test_the_workflow_page_draws_the_steps_live_and_cancels(tmp_path: Path) -> None:
    require_browser()
    from playwright.async_api import async_playwright

    served = jobs.using(
        f"sqlite:///{tmp_path / 'jobwire.db'}", api_keys=KEYS, workflow_interval_seconds=0.1
    )
    server = ServerThread(build(served))
    await server.start()
    alice = {"Authorization": "Bearer alice-key"}
    try:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as api,
            async_playwright() as playwright,
        ):
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
                await sign_in(page, server.url + UI)

                submitted = await api.post(f"{PREFIX}/workflows", json=GRAPH, headers=alice)
                assert submitted.status_code == 202, submitted.text
                workflow_id = submitted.json()["id"]
                await page.goto(f"{server.url}{UI}/#/workflows/{workflow_id}")
                await page.wait_for_selector("#workflow-state .failed", timeout=WAIT)
                states = {
                    name: await page.inner_text(
                        f'#workflow-steps tr[data-step="{name}"] .step-state'
                    )
                    for name in ("first", "left", "right", "join", "last")
                }
                assert states == {
                    "first": "succeeded", "left": "succeeded", "right": "succeeded",
                    "join": "failed", "last": "cancelled",
                }  # fmt: skip
                assert "dependency failed" in await page.inner_text('tr[data-step="last"]')
                await shoot(page, "workflow")

                # A step's job page links back to its workflow.
                await page.click('tr[data-step="join"] a')
                await page.wait_for_selector("#job-workflow", timeout=WAIT)
                assert "step join" in await page.inner_text("#job-workflow")
                await page.click("#job-workflow")
                await page.wait_for_selector("#workflow-steps", timeout=WAIT)

                # A running workflow is cancelled from its page.
                slow = {"steps": [{"job": "steps", "args": {"n": 1000, "pace": 1}},
                                  {"job": "quick", "args": {"x": 5}, "after": ["0"]}]}  # fmt: skip
                running = await api.post(f"{PREFIX}/workflows", json=slow, headers=alice)
                slow_id = running.json()["id"]
                await page.goto(f"{server.url}{UI}/#/workflows/{slow_id}")
                await page.click("#cancel-workflow")
                await page.wait_for_selector("#workflow-state .cancelled", timeout=WAIT)
                view = (await api.get(f"{PREFIX}/workflows/{slow_id}", headers=alice)).json()
                assert view["state"] == "cancelled"
                assert view["steps"][1]["reason"] == "workflow cancelled"
                # Not Bob's to see.
                bob = {"Authorization": "Bearer bob-key"}
                assert (
                    await api.get(f"{PREFIX}/workflows/{slow_id}", headers=bob)
                ).status_code == 404
                assert errors == []
            finally:
                await browser.close()
    finally:
        await server.stop()
