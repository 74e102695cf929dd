"""``expires_in`` and ``expires_at`` on submit, over HTTP to a real server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.test_http_submit import first_error


def parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def test_a_job_submitted_with_expires_in_shows_its_expiry_and_runs_in_time(
    client: httpx.AsyncClient,
) -> None:
    before = datetime.now(UTC)
    response = await client.post(
        "/jobs", json={"job": "add", "args": {"a": 1, "b": 2}, "expires_in": 60}
    )
    assert response.status_code == 202, response.text
    expires = parse(response.json()["expires_at"])
    assert before + timedelta(seconds=59) <= expires <= datetime.now(UTC) + timedelta(seconds=60)
    done = (await client.get(response.headers["location"], params={"wait": 10})).json()
    assert (done["state"], done["result"]) == ("succeeded", 3)


async def test_a_job_nobody_starts_before_its_expiry_ends_cancelled_as_expired(
    client: httpx.AsyncClient,
) -> None:
    # No worker takes this queue: the expirer ends the job once its expiry has passed.
    body = {"job": "add", "args": {"a": 1, "b": 2}, "queue": "nobody", "expires_in": 0.5}
    response = await client.post("/jobs", json=body)
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    deadline = time.monotonic() + 20
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = (await client.get(location, params={"wait": 5})).json()
        if view["state"] != "queued":
            break
    assert view["state"] == "cancelled" and view["started_at"] is None
    events = await client.get(location + "/events", headers={"Accept": "application/json"})
    items = events.json()["items"]
    assert [e["type"] for e in items] == ["queued", "cancelled"]
    assert items[-1]["data"]["reason"] == "expired"


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"expires_in": 0}, ["body", "expires_in"]),
        ({"expires_in": -5}, ["body", "expires_in"]),
        ({"expires_in": "soon"}, ["body", "expires_in"]),
        ({"expires_at": "2030-01-01T00:00:00"}, ["body", "expires_at"]),  # no time zone
        ({"expires_at": "2000-01-01T00:00:00Z"}, ["body", "expires_at"]),  # in the past
        ({"expires_in": 5, "delay": 60}, ["body", "expires_in"]),  # before it is due
        (
            {"expires_at": "2030-01-01T00:00:00Z", "run_at": "2031-01-01T00:00:00Z"},
            ["body", "expires_at"],
        ),
        ({"expires_in": 5, "expires_at": "2030-01-01T00:00:00Z"}, ["body", "expires_at"]),
    ],
)
async def test_an_expiry_that_cannot_be_met_is_refused_naming_the_field(
    client: httpx.AsyncClient, extra: dict[str, Any], loc: list[str]
) -> None:
    body = {"job": "add", "args": {"a": 1, "b": 2}, **extra}
    error = first_error(await client.post("/jobs", json=body))
    assert error["loc"] == loc
    assert error["msg"]
