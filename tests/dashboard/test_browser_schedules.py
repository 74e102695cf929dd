"""The Schedules page and the bulk cancel in a real browser (headless Debian chromium):
a schedule ticking every second shows its last outcome live, is paused and resumed from
the page; a bulk cancel says how many jobs it will cancel before it does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.channels.test_browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.dashboard.app import PREFIX, build, jobs
from tests.dashboard.conftest import KEYS, UI
from tests.dashboard.test_browser import shoot
from tests.support.server import ServerThread

WAIT = 30_000  # ms


async def test_schedules_and_bulk_cancel_in_a_browser(tmp_path: Path) -> None:
    require_browser()
    from playwright.async_api import async_playwright

    served = jobs.using(f"sqlite:///{tmp_path / 'jobwire.db'}", api_keys=KEYS)
    served.schedule("* * * * * *", "steps", {"n": 1, "pace": 0}, name="every-second", owner="alice")
    served.schedule("0 3 * * *", "quick", {"x": 1}, name="bobs-nightly", owner="bob")
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
                await sign_in(page, server.url + UI)

                # -- listed with its next tick and, live, its last outcome ----------------
                await page.goto(f"{server.url}{UI}/#/schedules")
                row = '#schedules tr[data-name="every-second"]'
                await page.wait_for_selector(f"{row} td.outcome .succeeded", timeout=WAIT)
                assert await page.locator('#schedules tr[data-name="bobs-nightly"]').count() == 0
                assert "* * * * * *" in await page.inner_text(row)
                assert await page.inner_text(f"{row} td.next") != "—"
                await shoot(page, "schedules")

                # -- paused from the page: in the store, for every process ---------------
                await page.click(f'{row} button[data-action="pause"]')
                await page.wait_for_selector(f"{row} td.sched-state .cancelled", timeout=WAIT)
                listed = await api.get(f"{PREFIX}/schedules", headers=alice)
                assert listed.json()["items"][0]["paused"] is True
                assert await page.inner_text(f"{row} td.next") == "—"
                await page.click(f'{row} button[data-action="resume"]')
                await page.wait_for_selector(f"{row} td.sched-state .succeeded", timeout=WAIT)
                listed = await api.get(f"{PREFIX}/schedules", headers=alice)
                assert listed.json()["items"][0]["paused"] is False

                # -- bulk cancel: the confirmation says how many ---------------------------
                for x in range(3):
                    answer = await api.post(
                        PREFIX,
                        json={"job": "quick", "args": {"x": x}, "delay": 3600},
                        headers=alice,
                    )
                    assert answer.status_code == 202, answer.text
                await page.goto(f"{server.url}{UI}/#/jobs?state=queued&job=quick")
                await page.click("#bulk-cancel")
                await page.wait_for_selector("#bulk-cancel-confirm", timeout=WAIT)
                assert "3 queued jobs match" in await page.inner_text("#bulk-cancel-confirm")
                await shoot(page, "bulk-cancel-confirm")
                await page.click("#bulk-cancel-go")
                await page.wait_for_function(
                    "() => document.getElementById('bulk-cancel-result')"
                    ".textContent.includes('Cancelled 3 jobs')",
                    timeout=WAIT,
                )
                left = await api.get(PREFIX, params={"job": "quick"}, headers=alice)
                assert {j["state"] for j in left.json()["items"]} == {"cancelled"}
                assert errors == []
            finally:
                await browser.close()
    finally:
        await server.stop()


async def sign_in(page: Any, ui: str) -> None:
    await page.goto(ui)
    await page.fill("#api_key", "alice-key")
    await page.click("#sign-in")
    await page.wait_for_selector("header .who", timeout=WAIT)
