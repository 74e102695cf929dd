"""``/docs`` in a real browser with no network: the demo's Swagger UI renders from the
files shipped inside jobwire and submits a job (try it out → execute → 202).

Every request the page makes to another origin is refused and recorded, so a page that
still reached for a CDN fails here rather than rendering from a cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.channels.test_browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.cli.conftest import Proc, jobwire_cmd

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "docs"
WAIT = 30_000  # ms: generous, the machine is shared


async def test_docs_render_offline_and_submit_a_job(tmp_path: Path) -> None:
    require_browser()
    from playwright.async_api import async_playwright

    proc = Proc(jobwire_cmd("demo", "--port", "0", "--db", str(tmp_path / "demo.db")), cwd=tmp_path)
    try:
        base = proc.wait_for(r"running at (http://127\.0\.0\.1:\d+)", stream="stdout").group(1)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 1600})
                foreign: list[str] = []
                errors: list[str] = []

                async def only_this_server(route: Any) -> None:
                    if route.request.url.startswith(base + "/"):
                        await route.continue_()
                    else:
                        foreign.append(route.request.url)
                        await route.abort("internetdisconnected")

                await page.route("**/*", only_this_server)
                page.on("pageerror", lambda exc: errors.append(str(exc)))

                await page.goto(f"{base}/docs")
                submit_op = page.locator("#operations-jobs-submit_jobs_post")
                if await submit_op.count() == 0:  # the operation id is FastAPI's to choose
                    submit_op = page.locator(".opblock-post").filter(
                        has=page.locator('[data-path="/jobs"]')
                    )
                await submit_op.locator(".opblock-summary").first.wait_for(timeout=WAIT)
                assert "jobwire demo" in await page.inner_text(".information-container")

                await submit_op.locator(".opblock-summary").first.click()
                await submit_op.locator(".try-out__btn").click()
                body = submit_op.locator("textarea.body-param__text")
                await body.fill(json.dumps({"job": "crawl", "args": {"pages": 1, "pause": 0}}))
                await submit_op.locator("button.execute").click()
                status = submit_op.locator(".live-responses-table tr.response .response-col_status")
                await status.first.wait_for(timeout=WAIT)
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "submitted.png"), full_page=True)
                assert (await status.first.inner_text()).strip() == "202"
                shown = json.loads(
                    await submit_op.locator(".live-responses-table .microlight").first.inner_text()
                )
            finally:
                await browser.close()

        assert foreign == [], f"/docs reached for other origins: {foreign}"
        assert errors == []
        assert shown["job"] == "crawl"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            done = (await client.get(f"/jobs/{shown['id']}", params={"wait": 20})).json()
        assert done["state"] == "succeeded", done
    finally:
        proc.kill()
