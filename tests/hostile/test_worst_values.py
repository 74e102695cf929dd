"""Whatever submit accepts can be read back: the worst values it takes are stored on
every engine and shown again through every route, stream and the dashboard."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from httpx_sse import aconnect_sse
from websockets.asyncio.client import connect

from tests.hostile.conftest import PREFIX, Serve
from tests.hostile.test_dashboard import UI

NASTY_TEXT = "\u0000\u001f\u007f\u2028\u2029\ufeff\U0010ffff😀 é </script><script>alert(1)</script>"


def nested(depth: int) -> Any:
    value: Any = NASTY_TEXT
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


WORST_VALUE = {
    "big_int": int("9" * 100),
    "negative_int": -int("9" * 99),
    "max_float": 1.7976931348623157e308,
    "tiny_float": 5e-324,
    "negative_zero": -0.0,
    "text": NASTY_TEXT,
    "key \u0000 " + "k" * 300: "v" * 10_000,
    "nested": nested(58),  # with {"args": {"value": {…}}}: 61 levels, within the 64
    "empty": [{}, [], "", None, True, False],
}

SUBMITS: list[dict[str, Any]] = [
    {"job": "echo", "args": {"value": WORST_VALUE}, "priority": 1000},
    {
        "job": "measure",
        "args": {"x": -1.7976931348623157e308, "n": -int("9" * 99), "label": NASTY_TEXT},
    },
    {"job": "explode", "args": {"message": NASTY_TEXT * 50}, "priority": -1000},
    {"job": "echo", "args": {"value": 1}, "run_at": "0001-01-01T00:00:00Z"},
    {
        "job": "echo",
        "args": {"value": 2},
        "run_at": "9999-12-31T23:59:59.999999Z",
        "queue": "q" * 64,
    },
    {"job": "echo", "args": {"value": 3}, "run_at": "0001-01-01T23:59:59+23:59"},
    {"job": "echo", "args": {"value": 4}, "run_at": "9999-12-31T00:00:00-23:59"},
    {"job": "echo", "args": {"value": 5}, "delay": 366 * 24 * 3600},
]

# Submits of jobs that run now (the others wait for a far time).
RUN_NOW = (0, 1, 2, 3, 5)


def strict(answer: httpx.Response) -> Any:
    """The answer's JSON, refusing what RFC 8259 does not allow."""
    assert answer.status_code == 200, (answer.request.url, answer.status_code, answer.text)

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in {answer.request.url}")

    return json.loads(answer.text, parse_constant=refuse)


async def test_the_worst_accepted_values_read_back_everywhere(serve: Serve) -> None:
    server = await serve(dashboard_open=True)
    ws_base = server.url.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        ids: list[str] = []
        for number, submit in enumerate(SUBMITS):
            key = ("é" * 254 + str(number)).encode("latin-1")
            answer = await client.post(PREFIX, json=submit, headers={"Idempotency-Key": key})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        for number in RUN_NOW:
            view = strict(await client.get(f"{PREFIX}/{ids[number]}", params={"wait": 20}))
            assert view["state"] in ("succeeded", "failed"), (number, view)
        echoed = strict(await client.get(f"{PREFIX}/{ids[0]}"))
        assert echoed["args"] == {"value": WORST_VALUE}
        assert echoed["result"] == WORST_VALUE
        failed = strict(await client.get(f"{PREFIX}/{ids[2]}"))
        assert failed["state"] == "failed" and NASTY_TEXT in failed["error"]["message"]
        far = [strict(await client.get(f"{PREFIX}/{ids[n]}"))["scheduled_at"] for n in (4, 6)]
        assert all(at.startswith("9999-12-3") for at in far), far

        # Lists: every page, every filter.
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = strict(await client.get(PREFIX, params=params))
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids)
        for params in ({"state": "queued"}, {"job": "echo"}, {"queue": "q" * 64}):
            strict(await client.get(PREFIX, params=params))

        # Each job's events: the JSON page, SSE, WebSocket.
        for number, job_id in enumerate(ids):
            page = strict(
                await client.get(
                    f"{PREFIX}/{job_id}/events", headers={"Accept": "application/json"}
                )
            )
            assert page["items"], job_id
            if number not in RUN_NOW:
                continue
            async with aconnect_sse(client, "GET", f"{PREFIX}/{job_id}/events") as source:
                types = [event.event async for event in source.aiter_sse()]
                assert types[-1] in ("succeeded", "failed")
            async with connect(f"{ws_base}{PREFIX}/{job_id}/ws") as ws:
                frames = [json.loads(frame) async for frame in ws]
                assert frames[-1]["type"] in ("succeeded", "failed")

        # Every event of every job, from the start: the feed and the dashboard's feed.
        for route in (f"{PREFIX}/events", f"{UI}/api/events"):
            async with asyncio.timeout(20):
                async with aconnect_sse(client, "GET", route, params={"after": 0}) as source:
                    queued: set[str] = set()
                    async for event in source.aiter_sse():
                        data = json.loads(event.data)
                        for item in data if isinstance(data, list) else [data]:
                            if item["type"] == "queued":
                                queued.add(item["job_id"])
                        if queued == set(ids):
                            break

        # The dashboard's reads.
        strict(await client.get(f"{UI}/api/overview"))
        strict(await client.get(f"{UI}/api/workers"))
        listed = strict(await client.get(f"{UI}/api/jobs", params={"limit": 200}))
        assert sorted(item["id"] for item in listed["items"]) == sorted(ids)
        for job_id in ids:
            detail = strict(await client.get(f"{UI}/api/jobs/{job_id}"))
            assert detail["id"] == job_id
        async with aconnect_sse(client, "GET", f"{UI}/api/jobs/{ids[0]}/events") as source:
            async for event in source.aiter_sse():
                batch = json.loads(event.data)
                if batch[-1]["type"] == "succeeded":
                    break
