"""A job's result is stored once, yet every stream shows it on the succeeded event; a
list page of jobs with large results stays small."""

from __future__ import annotations

import json

import httpx

from tests.channels.conftest import PREFIX, Server, log_of, payloads, read_sse, submit, ws_follow

LARGE = 300_000  # characters: far over what a list item carries, under the result limit


async def finished(client: httpx.AsyncClient, job_id: str) -> dict[str, object]:
    response = await client.get(f"{PREFIX}/{job_id}", params={"wait": 30})
    view: dict[str, object] = response.json()
    assert view["state"] == "succeeded", view
    return view


async def test_every_stream_shows_a_large_result_on_the_succeeded_event(
    server: Server, client: httpx.AsyncClient
) -> None:
    job_id = await submit(client, "sized", {"size": LARGE})
    await finished(client, job_id)
    expected = {"result": "x" * LARGE, "attempt": 1}

    sse = payloads(await read_sse(client, f"{PREFIX}/{job_id}/events"))
    ws = await ws_follow(f"{server.ws_url}{PREFIX}/{job_id}/ws")
    page = await log_of(client, job_id)

    for shown in (sse, ws.messages, page):
        assert shown[-1]["type"] == "succeeded"
        assert shown[-1]["data"] == expected


async def test_the_stream_of_all_jobs_shows_the_result_too(client: httpx.AsyncClient) -> None:
    job_id = await submit(client, "sized", {"size": 5_000})
    await finished(client, job_id)

    def is_the_end(sse: object) -> bool:
        data = json.loads(sse.data)  # type: ignore[attr-defined]
        return bool(data.get("job_id") == job_id and data.get("type") == "succeeded")

    events = payloads(await read_sse(client, f"{PREFIX}/events?after=0", stop=is_the_end))
    assert events[-1]["data"] == {"result": "x" * 5_000, "attempt": 1}


async def test_a_list_page_of_jobs_with_large_results_stays_small(
    client: httpx.AsyncClient,
) -> None:
    large = [await submit(client, "sized", {"size": LARGE}) for _ in range(5)]
    small = await submit(client, "sized", {"size": 10})
    for job_id in [*large, small]:
        await finished(client, job_id)

    response = await client.get(PREFIX, params={"job": "sized", "limit": 6})
    assert response.status_code == 200
    assert len(response.content) < 12_000, "a list page carried the large results"
    items = {item["id"]: item for item in response.json()["items"]}
    assert set(items) == {*large, small}
    for job_id in large:
        assert (items[job_id]["result"], items[job_id]["result_omitted"]) == (None, True)
        assert items[job_id]["state"] == "succeeded"
    assert (items[small]["result"], items[small]["result_omitted"]) == ("x" * 10, False)
    # The job's own view has the result whole.
    whole = await client.get(f"{PREFIX}/{large[0]}")
    assert whole.json()["result"] == "x" * LARGE
