"""Who gets the dashboard: closed by default, a session for an API key, owners apart,
actions refused across sites, and a page policy with no inline script."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Header, HTTPException

from jobwire import Jobwire
from tests.dashboard.app import build, jobs
from tests.dashboard.conftest import KEYS, PREFIX, UI, Serve, csrf_of, sign_in, submit
from tests.support.server import ServerThread


async def test_with_no_credentials_configured_the_dashboard_is_closed(serve: Serve) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.url) as client:
        page = await client.get(UI)
        assert page.status_code == 403
        assert "JOBWIRE_API_KEYS" in page.text and "JOBWIRE_DASHBOARD_OPEN" in page.text
        assert (await client.get(f"{UI}/api/jobs")).status_code == 401
        assert (await client.get(f"{UI}/api/events")).status_code == 401


async def test_a_browser_signs_in_with_an_api_key_and_gets_a_strict_session_cookie(
    serve: Serve,
) -> None:
    server = await serve(api_keys=KEYS)
    async with httpx.AsyncClient(base_url=server.url) as client:
        first = await client.get(UI)
        assert first.status_code == 303 and first.headers["location"] == f"{UI}/login"
        form = await client.get(f"{UI}/login")
        assert form.status_code == 200 and 'name="api_key"' in form.text
        answer = await client.post(
            f"{UI}/login",
            content="api_key=alice-key",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 303 and answer.headers["location"] == f"{UI}/"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("jobwire_session=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert f"Path={UI}/" in cookie and "alice-key" not in cookie
        page = await client.get(f"{UI}/")
        assert page.status_code == 200 and "alice" in page.text
        # The session is the dashboard's: the JSON API still wants its Bearer key.
        assert (await client.get(PREFIX)).status_code == 401


async def test_wrong_credentials_get_no_page_and_no_session(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.post(
            f"{UI}/login",
            content="api_key=guess",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 401 and "Wrong API key" in answer.text
        assert "set-cookie" not in answer.headers
        assert (await client.get(f"{UI}/")).status_code == 303
        assert (await client.get(f"{UI}/api/jobs")).status_code == 401
        client.cookies.set("jobwire_session", "v1.9999999999.YWxpY2U.0000.forged", path=f"{UI}/")
        assert (await client.get(f"{UI}/api/jobs")).status_code == 401
        bearer = {"Authorization": "Bearer guess"}
        assert (await client.get(f"{UI}/api/jobs", headers=bearer)).status_code == 401


async def test_a_sign_in_posted_from_another_site_is_refused(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.post(
            f"{UI}/login",
            content="api_key=alice-key",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": "https://evil.example",
            },
        )
        assert answer.status_code == 403 and "set-cookie" not in answer.headers


async def test_pages_send_a_policy_without_inline_script(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    async with httpx.AsyncClient(base_url=server.url) as client:
        await sign_in(client, "alice-key")
        for path in (f"{UI}/", f"{UI}/login", f"{UI}/static/app.js", f"{UI}/api/jobs"):
            answer = await client.get(path)
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
            assert "frame-ancestors 'none'" in policy
            assert answer.headers["x-content-type-options"] == "nosniff"
        page = (await client.get(f"{UI}/")).text
        scripts = re.findall(r"<script\b[^>]*>", page)
        assert scripts and all(" src=" in tag for tag in scripts)
        assert re.search(r"<script\b[^>]*>\s*[^<\s]", page) is None  # nothing between the tags
        assert re.search(r"\son[a-z]+=", page) is None  # no inline event handlers
        assert "http://" not in page and "https://" not in page  # nothing from elsewhere
        assert (await client.get(f"{UI}/static/../routes.py")).status_code == 404


async def test_a_viewer_sees_and_acts_on_their_own_jobs_only(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    async with httpx.AsyncClient(base_url=server.url) as client:
        mine = await submit(client, "alice-key", "steps", {"n": 100, "pace": 0.5})
        theirs = await submit(client, "bob-key", "steps", {"n": 100, "pace": 0.5})
        await sign_in(client, "alice-key")
        csrf = csrf_of((await client.get(f"{UI}/")).text)
        listed = (await client.get(f"{UI}/api/jobs")).json()["items"]
        assert [j["id"] for j in listed] == [mine]
        assert (await client.get(f"{UI}/api/jobs", params={"owner": "bob"})).json()["items"] == []
        assert (await client.get(f"{UI}/api/jobs", params={"id": theirs})).json()["items"] == []
        assert (await client.get(f"{UI}/api/jobs/{theirs}")).status_code == 404
        headers = {"X-Jobwire-CSRF": csrf}
        refused = await client.post(f"{UI}/api/jobs/{theirs}/cancel", headers=headers)
        assert refused.status_code == 404
        assert (
            await client.post(f"{UI}/api/jobs/{mine}/cancel", headers=headers)
        ).status_code == 202
        bob = {"Authorization": "Bearer bob-key"}
        assert (await client.get(f"{PREFIX}/{theirs}", headers=bob)).json()["state"] != "cancelled"


async def test_actions_without_the_token_or_from_another_origin_are_refused(
    serve: Serve,
) -> None:
    server = await serve(api_keys=KEYS)
    async with httpx.AsyncClient(base_url=server.url) as client:
        job_id = await submit(client, "alice-key", "steps", {"n": 100, "pace": 0.5})
        await sign_in(client, "alice-key")
        csrf = csrf_of((await client.get(f"{UI}/")).text)
        cancel = f"{UI}/api/jobs/{job_id}/cancel"
        assert (await client.post(cancel)).status_code == 403
        assert (
            await client.post(cancel, headers={"X-Jobwire-CSRF": "x" + csrf})
        ).status_code == 403
        cross = {"X-Jobwire-CSRF": csrf, "Origin": "https://evil.example"}
        assert (await client.post(cancel, headers=cross)).status_code == 403
        fetched = {"X-Jobwire-CSRF": csrf, "Sec-Fetch-Site": "cross-site"}
        assert (await client.post(cancel, headers=fetched)).status_code == 403
        purge = await client.post(f"{UI}/api/purge", json={})
        assert purge.status_code == 403
        assert (await client.get(f"{UI}/api/jobs/{job_id}")).json()["state"] != "cancelled"
        own = {"X-Jobwire-CSRF": csrf, "Origin": server.url}
        assert (await client.post(cancel, headers=own)).status_code == 202
    # A script with its key sends no cookie: the key itself is the credential.
    async with httpx.AsyncClient(base_url=server.url) as script:
        other = await submit(script, "alice-key", "steps", {"n": 100, "pace": 0.5})
        bearer = {"Authorization": "Bearer alice-key"}
        answer = await script.post(f"{UI}/api/jobs/{other}/cancel", headers=bearer)
        assert answer.status_code == 202


async def test_signing_out_ends_the_session(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    async with httpx.AsyncClient(base_url=server.url) as client:
        await sign_in(client, "alice-key")
        csrf = csrf_of((await client.get(f"{UI}/")).text)
        assert (await client.post(f"{UI}/logout")).status_code == 403
        assert (
            await client.post(f"{UI}/logout", headers={"X-Jobwire-CSRF": csrf})
        ).status_code == 204
        assert (await client.get(f"{UI}/api/jobs")).status_code == 401


async def test_an_open_dashboard_shows_every_owner_and_warns_at_start(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobwire.dashboard"):
        server = await serve(api_keys=KEYS, dashboard_open=True)
    assert any("JOBWIRE_DASHBOARD_OPEN" in r.getMessage() for r in caplog.records)
    async with httpx.AsyncClient(base_url=server.url) as client:
        a = await submit(client, "alice-key", "quick", {"x": 1})
        b = await submit(client, "bob-key", "quick", {"x": 2})
        page = await client.get(f"{UI}/")
        assert page.status_code == 200
        listed = {j["id"] for j in (await client.get(f"{UI}/api/jobs")).json()["items"]}
        assert listed == {a, b}
        only_bob = (await client.get(f"{UI}/api/jobs", params={"owner": "bob"})).json()
        assert [j["id"] for j in only_bob["items"]] == [b]
        overview = (await client.get(f"{UI}/api/overview")).json()
        assert overview["counts_visible"] is True
        default = overview["counts"]["default"]
        assert sum(default.values()) == 2  # both owners' jobs, whatever their state now
        # Open is not unguarded: actions still need the page's token.
        assert (await client.post(f"{UI}/api/purge/count", json={})).status_code == 403
        csrf = {"X-Jobwire-CSRF": csrf_of(page.text)}
        counted = await client.post(f"{UI}/api/purge/count", json={}, headers=csrf)
        assert counted.status_code == 200


async def test_the_applications_own_auth_decides_who_sees_the_dashboard(tmp_path: Path) -> None:
    async def current_user(x_user: Annotated[str | None, Header()] = None) -> str:
        if not x_user:
            raise HTTPException(401, "who are you?")
        return x_user

    served = Jobwire(f"sqlite:///{tmp_path / 'app-auth.db'}", auth=current_user)
    served.registry = dict(jobs.registry)
    async with ServerThread(build(served)) as server, httpx.AsyncClient(base_url=server.url) as c:
        ann = {"X-User": "ann"}
        body = {"job": "steps", "args": {"n": 100, "pace": 0.5}}
        mine = await c.post(PREFIX, json=body, headers=ann)
        assert mine.status_code == 202
        assert (await c.get(f"{UI}/")).status_code == 401
        assert (await c.get(f"{UI}/login")).status_code == 303  # nothing of ours to sign in to
        page = await c.get(f"{UI}/", headers={"X-User": "ann"})
        assert page.status_code == 200 and "ann" in page.text
        listed = await c.get(f"{UI}/api/jobs", headers={"X-User": "ann"})
        assert [j["id"] for j in listed.json()["items"]] == [mine.json()["id"]]
        other = await c.get(f"{UI}/api/jobs", headers={"X-User": "ben"})
        assert other.json()["items"] == []
        # Its credentials may be ambient (a cookie): actions still need the page's token.
        cancel = f"{UI}/api/jobs/{mine.json()['id']}/cancel"
        assert (await c.post(cancel, headers={"X-User": "ann"})).status_code == 403
        token = {"X-User": "ann", "X-Jobwire-CSRF": csrf_of(page.text)}
        assert (await c.post(cancel, headers=token)).status_code == 202
