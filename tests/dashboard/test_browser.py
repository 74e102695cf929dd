"""The dashboard in a real browser: headless Debian chromium driven by Playwright.

Signs in (a wrong key gets no page), watches jobs submitted through the API appear
without a reload, follows a running job's progress bar and partial outputs, cancels it
from the page, reads a failed job's traceback, retries it, sees a job that no live worker
runs flagged, purges after a confirmation, and sees the worker. Screenshots of each page
go to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.channels.test_browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.dashboard.conftest import KEYS, UI, Serve, submit, wait_state

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
WAIT = 30_000  # ms: generous, the machine is shared


async def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_the_dashboard_in_a_browser(serve: Serve) -> None:
    require_browser()
    from playwright.async_api import async_playwright

    server = await serve(api_keys=KEYS)
    ui = server.url + UI
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
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            # -- signing in: a wrong key gets no page ------------------------------------
            await page.goto(ui)
            assert page.url == f"{ui}/login"
            await page.fill("#api_key", "not-a-key")
            await page.click("#sign-in")
            await page.wait_for_selector("#error:not([hidden])", timeout=WAIT)
            assert "Wrong API key" in await page.inner_text("#error")
            assert await page.locator("#view").count() == 0
            await shoot(page, "login-refused")
            await page.fill("#api_key", "alice-key")
            await page.click("#sign-in")
            await page.wait_for_selector("header .who", timeout=WAIT)
            assert await page.inner_text("header .who") == "alice"

            # -- some history for the overview ---------------------------------------------
            done = [await submit(api, "alice-key", "quick", {"x": i}) for i in range(4)]
            failed = await submit(api, "alice-key", "boom", {"reason": "on purpose"})
            for job_id in [*done, failed]:
                await wait_state(api, "alice-key", job_id)

            # -- jobs appear without a reload ------------------------------------------------
            await page.goto(f"{ui}/#/jobs")
            await page.wait_for_selector(f'#jobs tr[data-id="{failed}"]', timeout=WAIT)
            await page.evaluate("window.notReloaded = true")
            fresh = [await submit(api, "alice-key", "quick", {"x": 100 + i}) for i in range(3)]
            for job_id in fresh:
                row = f'#jobs tr[data-id="{job_id}"] td.state .succeeded'
                await page.wait_for_selector(row, timeout=WAIT)
            assert await page.evaluate("window.notReloaded") is True
            await shoot(page, "jobs")

            # -- a running job: progress advances, outputs arrive, cancel from the page -----
            running = await submit(api, "alice-key", "steps", {"n": 400, "pace": 0.1})
            await page.wait_for_selector(f'#jobs tr[data-id="{running}"]', timeout=WAIT)
            await page.click(f'#jobs tr[data-id="{running}"] td.id a')
            await page.wait_for_function(
                "() => document.getElementById('job-progress')?.value >= 3", timeout=WAIT
            )
            seen = await page.evaluate("document.getElementById('job-progress').value")
            outputs = await page.locator("#outputs li").count()
            await page.wait_for_function(
                f"() => document.getElementById('job-progress')?.value >= {seen + 3}",
                timeout=WAIT,
            )
            await page.wait_for_function(
                f"() => document.querySelectorAll('#outputs li').length >= {outputs + 3}",
                timeout=WAIT,
            )
            assert await page.evaluate("window.notReloaded") is True
            assert '{"step":' in await page.inner_text("#outputs li >> nth=0")
            await shoot(page, "job-running")
            await page.click("#cancel")
            await page.wait_for_selector("#job-state .cancelled", timeout=WAIT)
            assert (await wait_state(api, "alice-key", running))["state"] == "cancelled"
            await page.wait_for_selector("#attempts tbody tr", timeout=WAIT)
            assert "cancelled" in await page.inner_text("#attempts tbody")

            # -- a failed job: its traceback; retried from the page ---------------------------
            await page.goto(f"{ui}/#/jobs/{failed}")
            await page.wait_for_selector("#traceback", timeout=WAIT)
            traceback = await page.inner_text("#traceback")
            assert "Traceback (most recent call last)" in traceback
            assert "ValueError: boom: on purpose" in traceback
            await shoot(page, "job-failed")
            await page.click("#retry")
            await page.wait_for_selector(f'#retry-of[href="#/jobs/{failed}"]', timeout=WAIT)
            retry_id = (await page.inner_text("#job-id")).strip()
            assert retry_id != failed
            await page.wait_for_selector("#job-state .failed", timeout=WAIT)  # it ran, live

            assert await page.locator("#no-worker").count() == 0

            # -- a queued job that no live worker runs says so ------------------------------
            stranded = await api.post(
                "/jobs",
                json={"job": "quick", "args": {"x": 1}, "queue": "nowhere"},
                headers={"Authorization": "Bearer alice-key"},
            )
            assert stranded.status_code == 202, stranded.text
            await page.goto(f"{ui}/#/jobs/{stranded.json()['id']}")
            await page.wait_for_selector("#no-worker", timeout=WAIT)
            notice = await page.inner_text("#no-worker")
            assert "No live worker runs quick on queue nowhere" in notice
            await shoot(page, "job-no-worker")
            await page.click("#cancel")
            await page.wait_for_selector("#job-state .cancelled", timeout=WAIT)

            # -- purge, after a confirmation that says how many -------------------------------
            await page.goto(f"{ui}/#/jobs?state=failed")
            await page.click("#purge")
            await page.wait_for_selector("#purge-confirm", timeout=WAIT)
            assert (await page.inner_text("#purge-confirm")).startswith("2 failed jobs")
            await shoot(page, "purge-confirm")
            await page.click("#purge-go")
            await page.wait_for_selector("#purge-result:has-text('Deleted 2 jobs')", timeout=WAIT)
            gone = await api.get(f"/jobs/{failed}", headers={"Authorization": "Bearer alice-key"})
            assert gone.status_code == 404

            # -- overview and workers -------------------------------------------------------
            await page.goto(f"{ui}/#/")
            await page.wait_for_selector("#succeeded-hour", timeout=WAIT)
            assert int(await page.inner_text("#succeeded-hour")) >= 7
            assert await page.locator("#throughput rect.ok").count() > 0
            assert await page.inner_text("#workers-online") == "1"
            await shoot(page, "overview")
            await page.goto(f"{ui}/#/workers")
            await page.wait_for_selector("#workers tbody tr[data-id]", timeout=WAIT)
            row = await page.inner_text("#workers tbody tr[data-id]")
            assert "online" in row and "default" in row
            await shoot(page, "workers")
            # What the browser logs for the refused sign-in (401) and a missing favicon.
            loading = "Failed to load resource"
            assert [e for e in errors if not e.startswith(loading)] == [], errors
        finally:
            await browser.close()
