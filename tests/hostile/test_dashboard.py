"""The dashboard's API takes hostile input as the API does: 4xx naming what is wrong,
never a 5xx or a cut stream, on every store engine."""

from __future__ import annotations

import httpx

from tests.dashboard.conftest import csrf_of
from tests.hostile.conftest import PREFIX, Serve
from tests.hostile.test_requests import FOREIGN_DIGITS, HUGE_POSITIONS, HUGE_SEQS, header

UI = PREFIX + "/ui"


async def open_dashboard(client: httpx.AsyncClient) -> dict[str, str]:
    """The headers of the dashboard's own page: its CSRF token and a JSON body."""
    page = await client.get(f"{UI}/")
    assert page.status_code == 200, page.text
    return {"X-Jobwire-CSRF": csrf_of(page.text), "Content-Type": "application/json"}


async def test_hostile_filters_of_the_job_list_are_422(serve: Serve) -> None:
    server = await serve(dashboard_open=True)
    async with httpx.AsyncClient(base_url=server.url) as client:
        for params in (
            {"since": "NaN"},
            {"since": "Infinity"},
            {"until": "-Infinity"},
            {"until": "1e999"},
            {"since": str(10**30)},
            {"until": "-1"},
            {"limit": str(10**30)},
            {"state": "sleeping"},
        ):
            answer = await client.get(f"{UI}/api/jobs", params=params)
            assert answer.status_code == 422, (params, answer.text)
            assert answer.json()["detail"][0]["loc"][:2] == ["query", next(iter(params))]
        assert (await client.get(f"{UI}/api/jobs", params={"since": "0"})).status_code == 200


async def test_hostile_purge_bodies_are_4xx_and_purge_nothing(serve: Serve) -> None:
    server = await serve(dashboard_open=True)
    async with httpx.AsyncClient(base_url=server.url) as client:
        headers = await open_dashboard(client)
        done = await client.post(PREFIX, json={"job": "echo", "args": {"value": 1}})
        job_id = done.json()["id"]
        assert (await client.get(f"{PREFIX}/{job_id}", params={"wait": 10})).json()[
            "state"
        ] == "succeeded"
        bodies: list[tuple[str | bytes, str]] = [
            ('{"states": "succeeded"}', "states"),
            ('{"states": 5}', "states"),
            ('{"states": [1]}', "states"),
            ('{"states": ["running"]}', "states"),
            ('{"finished_before": ' + "9" * 400 + "}", "body"),
            ('{"finished_before": 1e300}', "finished_before"),
            ('{"finished_after": -5}', "finished_after"),
            ('{"finished_after": "yesterday"}', "finished_after"),
            ('{"finished_after": true}', "finished_after"),
            ('{"finished_before": NaN}', "body"),
            ('{"job": ' + "[" * 8000 + "]" * 8000 + "}", "body"),
            ('{"job": 5}', "job"),
            ("[1, 2]", "body"),
            ("not json", "body"),
        ]
        for route in ("purge/count", "purge"):
            for body, field in bodies:
                answer = await client.post(f"{UI}/api/{route}", content=body, headers=headers)
                assert answer.status_code == 422, (route, body[:60], answer.text)
                assert answer.json()["detail"][0]["loc"][-1] == field, answer.text
            form = await client.post(
                f"{UI}/api/{route}",
                content="states=succeeded",
                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
            )
            assert form.status_code == 415
            too_big = await client.post(
                f"{UI}/api/{route}", content='{"job": "' + "x" * 100_000 + '"}', headers=headers
            )
            assert too_big.status_code == 413
        assert (await client.get(f"{PREFIX}/{job_id}")).status_code == 200  # not purged
        counted = await client.post(f"{UI}/api/purge/count", content="{}", headers=headers)
        assert counted.status_code == 200 and counted.json()["count"] == 1


async def test_hostile_positions_on_the_dashboards_streams_are_422(serve: Serve) -> None:
    server = await serve(dashboard_open=True)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        job_id = (await client.post(PREFIX, json={"job": "echo"})).json()["id"]
        for route, huge in (
            (f"{UI}/api/events", HUGE_POSITIONS),
            (
                f"{UI}/api/jobs/{job_id}/events",
                HUGE_SEQS,
            ),
        ):
            for bad in huge:
                answer = await client.get(route, params={"after": bad})
                assert answer.status_code == 422, (route, bad, answer.text)
            for bad in huge + FOREIGN_DIGITS:
                answer = await client.get(route, headers={"Last-Event-ID": header(bad)})
                assert answer.status_code == 422, (route, bad, answer.text)
                assert answer.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]


async def test_dashboard_actions_with_a_body_of_another_type_are_415(serve: Serve) -> None:
    server = await serve(dashboard_open=True)
    async with httpx.AsyncClient(base_url=server.url) as client:
        headers = await open_dashboard(client)
        job_id = (await client.post(PREFIX, json={"job": "echo", "delay": 3600})).json()["id"]
        for action in ("cancel", "retry"):
            answer = await client.post(
                f"{UI}/api/jobs/{job_id}/{action}",
                content="x=1",
                headers={**headers, "Content-Type": "text/plain"},
            )
            assert answer.status_code == 415, answer.text
        del headers["Content-Type"]
        cancelled = await client.post(f"{UI}/api/jobs/{job_id}/cancel", headers=headers)
        assert cancelled.status_code == 202
