"""Hostile requests get a 4xx naming what is wrong, never a 5xx, and leave the owner's
jobs readable: on every store engine, through the API's routes and streams."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.hostile.conftest import PREFIX, Serve

HUGE_POSITIONS = (str(2**63), str(10**30), "9" * 5000)
HUGE_SEQS = (str(2**31), *HUGE_POSITIONS)
# Header values reach the server as latin-1: "²" and "¹" are digits to str.isdigit(),
# and "١٢٣" (Arabic-Indic, sent as UTF-8) are digits to int().
FOREIGN_DIGITS = ("²", "1¹", "١٢٣", "1_000", "+5", "-1", "7x")


def header(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def raw_post(client: httpx.AsyncClient, body: str | bytes, **headers: str) -> Any:
    return client.post(
        PREFIX, content=body, headers={"Content-Type": "application/json", **headers}
    )


def error_locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, (response.status_code, response.text)
    return [error["loc"] for error in response.json()["detail"]]


async def assert_list_reads(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    listed = await client.get(PREFIX)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


NON_FINITE = (
    '{"job": "measure", "args": {"x": NaN}}',
    '{"job": "measure", "args": {"x": Infinity}}',
    '{"job": "measure", "args": {"x": -Infinity}}',
    '{"job": "measure", "args": {"x": 1e999}}',
    '{"job": "measure", "delay": NaN}',
    '{"job": "echo", "args": {"value": [1, NaN]}}',
)


async def test_non_finite_numbers_are_refused_and_the_list_still_reads(serve: Serve) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.url) as client:
        for body in NON_FINITE:
            answer = await raw_post(client, body)
            assert error_locs(answer) == [["body"]], body
            assert "NaN" not in json.dumps(answer.json()["detail"][0]["input"])
        assert await assert_list_reads(client) == []


async def test_a_run_at_outside_years_1_to_9999_in_utc_or_with_a_delay_is_refused(
    serve: Serve,
) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.url) as client:
        for run_at in (
            "0001-01-01T00:30:00+01:00",  # year 0 in UTC
            "9999-12-31T23:30:00-01:00",  # year 10000 in UTC
        ):
            answer = await client.post(PREFIX, json={"job": "echo", "run_at": run_at})
            assert error_locs(answer) == [["body", "run_at"]]
        assert await assert_list_reads(client) == []
        answer = await client.post(
            PREFIX, json={"job": "echo", "delay": 5, "run_at": "2030-01-01T00:00:00Z"}
        )
        assert error_locs(answer) == [["body", "run_at"]]
        assert "either delay or run_at" in answer.json()["detail"][0]["msg"]


PAST_THE_LIMITS: tuple[str | bytes, ...] = (
    '{"job": "echo", "args": {"value": ' + "[" * 100_000 + "]" * 100_000 + "}}",
    '{"job": "echo", "args": {"value": ' + "[" * 70 + "]" * 70 + "}}",
    '{"job": "measure", "args": {"n": ' + "9" * 5000 + "}}",
    '{"job": "measure", "args": {"x": 1.' + "5" * 200 + "}}",
    '{"job": "echo", "args": {"value": "\\ud800"}}',
    b'{"job": "echo", "args": {"value": "\xff"}}',
)


async def test_bodies_past_the_parsers_limits_are_refused_as_422(serve: Serve) -> None:
    """Nesting past 64 levels, number literals past 100 characters, strings that are
    not Unicode: each a 422 on the body, however deep or long."""
    server = await serve(max_body_bytes=1_048_576)
    async with httpx.AsyncClient(base_url=server.url) as client:
        for body in PAST_THE_LIMITS:
            answer = await raw_post(client, body)
            assert error_locs(answer) == [["body"]], body[:80]
        assert await assert_list_reads(client) == []


NOT_JSON: tuple[tuple[str, str | None], ...] = (
    ('{"job": "echo"}', "text/plain"),
    ('{"job": "echo"}', "text/plain;charset=UTF-8"),
    ("job=echo", "application/x-www-form-urlencoded"),
    (
        '--b\r\nContent-Disposition: form-data; name="job"\r\n\r\necho\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
    ('{"job": "echo"}', None),
)


async def test_a_submit_that_is_not_declared_json_is_refused_with_415(serve: Serve) -> None:
    """Cross-site pages may send these without a preflight: none may enqueue a job."""
    server = await serve()
    async with httpx.AsyncClient(base_url=server.url) as client:
        for content, content_type in NOT_JSON:
            headers = {"Content-Type": content_type} if content_type else {}
            answer = await client.post(PREFIX, content=content, headers=headers)
            assert answer.status_code == 415, answer.text
            assert "application/json" in answer.json()["detail"]
        assert await assert_list_reads(client) == []


async def test_a_cancel_with_a_body_of_another_type_is_refused_with_415(serve: Serve) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.url) as client:
        made = await client.post(PREFIX, json={"job": "echo", "delay": 3600})
        job_id = made.json()["id"]
        form = await client.post(
            f"{PREFIX}/{job_id}/cancel",
            content="x=1",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415
        assert (await client.get(f"{PREFIX}/{job_id}")).json()["state"] == "queued"
        assert (await client.post(f"{PREFIX}/{job_id}/cancel")).status_code == 202


async def test_event_positions_past_the_engines_range_are_422_on_every_route(
    serve: Serve,
) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        done = await client.post(PREFIX, json={"job": "echo", "args": {"value": 1}})
        job_id = done.json()["id"]
        routes = [(f"{PREFIX}/events", HUGE_POSITIONS), (f"{PREFIX}/{job_id}/events", HUGE_SEQS)]
        for route, huge in routes:
            for accept in ("text/event-stream", "application/json"):
                for bad in huge:
                    answer = await client.get(
                        route, params={"after": bad}, headers={"Accept": accept}
                    )
                    assert answer.status_code == 422, (route, bad, answer.text)
                    assert answer.json()["detail"][0]["loc"] == ["query", "after"]
                for bad in huge + FOREIGN_DIGITS:
                    answer = await client.get(
                        route, headers={"Accept": accept, "Last-Event-ID": header(bad)}
                    )
                    assert answer.status_code == 422, (route, bad, answer.text)
                    assert answer.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]
        # The largest event number there is: nothing after it, and no error.
        page = await client.get(
            f"{PREFIX}/{job_id}/events",
            params={"after": 2**31 - 1},
            headers={"Accept": "application/json"},
        )
        assert page.status_code == 200 and page.json()["items"] == []


async def test_a_websocket_with_a_position_past_the_range_is_closed_as_a_policy_error(
    serve: Serve,
) -> None:
    server = await serve()
    ws_base = server.url.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=server.url) as client:
        job_id = (await client.post(PREFIX, json={"job": "echo"})).json()["id"]
    for path in (f"{PREFIX}/ws", f"{PREFIX}/{job_id}/ws"):
        try:
            async with connect(f"{ws_base}{path}?after={2**64}") as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        except InvalidStatus as refused:
            assert refused.response.status_code == 403  # refused before the handshake


OUT_OF_RANGE: tuple[tuple[str, Any], ...] = (
    ("priority", 10**30),
    ("priority", 1.5),
    ("delay", 10**30),
    ("delay", -1),
    ("queue", "x" * 65),
    ("job", "x" * 201),
    ("args", [1, 2]),
    ("webhook", "http://example.com"),
)


async def test_out_of_range_fields_are_422_naming_the_field(serve: Serve) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.url) as client:
        for field, value in OUT_OF_RANGE:
            answer = await client.post(PREFIX, json={"job": "echo", field: value})
            locs = error_locs(answer)
            assert all(loc[:2] == ["body", field] for loc in locs), locs
            json.dumps(answer.json(), allow_nan=False)  # a body any client can read


async def test_query_values_out_of_range_are_422(serve: Serve) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.url) as client:
        job_id = (await client.post(PREFIX, json={"job": "echo"})).json()["id"]
        for route, params in [
            (f"{PREFIX}/{job_id}", {"wait": "NaN"}),
            (f"{PREFIX}/{job_id}", {"wait": "Infinity"}),
            (f"{PREFIX}/{job_id}", {"wait": "1e999"}),
            (PREFIX, {"limit": str(10**30)}),
            (PREFIX, {"state": "sleeping"}),
            (PREFIX, {"cursor": "!!"}),
        ]:
            answer = await client.get(route, params=params)
            assert answer.status_code == 422, (route, params, answer.text)


async def test_a_nul_character_in_a_query_or_path_parameter_is_a_422_naming_it(
    serve: Serve,
) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.url) as client:
        for name in ("job", "queue"):
            answer = await client.get(PREFIX, params={name: "a\x00b"})
            assert answer.status_code == 422, answer.text
            assert error_locs(answer) == [["query", name]]
        answer = await client.post(f"{PREFIX}/schedules/a%00b/pause")
        assert answer.status_code == 422 and error_locs(answer) == [["path", "name"]]
        answer = await client.get(f"{PREFIX}/ui/api/jobs", params={"job": "\x00"})
        assert answer.status_code in (401, 422), answer.text  # never a 503
        assert await assert_list_reads(client) == []
