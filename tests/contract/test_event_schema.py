"""Every event type, on every engine, as the HTTP API shows it, fits the published event
schema (``jobwire.api.events``), and the OpenAPI document carries that schema."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from jobwire import Jobwire
from jobwire.api.events import EventPage, validate_event
from jobwire.model import EventDraft, EventType
from jobwire.store.base import Store
from tests.support.jobs import jobs as support_jobs

NAMES = ["flaky", "always_fails", "noop"]


@pytest.fixture
async def app(store: Store) -> AsyncIterator[Jobwire]:
    app = Jobwire(store=store, dashboard_open=True)
    app.registry = {name: support_jobs.registry[name] for name in NAMES}
    async with app:
        yield app


@pytest.fixture
async def http(app: Jobwire) -> AsyncIterator[httpx.AsyncClient]:
    api = FastAPI()
    api.include_router(app.router, prefix="/jobs")
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def claim(store: Store, name: str, worker: str = "w1", lease: float = 30.0) -> str:
    [claimed] = await store.claim(worker, ["default"], [name], 1, lease)
    return claimed.token


async def every_kind_of_event(store: Store, app: Jobwire) -> list[str]:
    """Jobs whose logs hold every event type and every variant of ``queued``."""
    # queued, started, progress, output, retrying, queued (released), succeeded
    one = await app.enqueue("flaky", {"failures": 1})
    token = await claim(store, "flaky")
    await store.report(
        one.id,
        token,
        [
            EventDraft(EventType.PROGRESS, {"current": 1, "total": 2, "message": "half"}),
            EventDraft(EventType.OUTPUT, {"output": {"rows": [1, 2]}}),
        ],
    )
    error = {"type": "ValueError", "message": "try again", "traceback": "Traceback …"}
    await store.fail(one.id, token, error, retry_at=time.time() - 1)
    await store.release(one.id, await claim(store, "flaky"))
    await store.finish(one.id, await claim(store, "flaky"), {"ok": True})
    # failed
    two = await app.enqueue("always_fails", {"message": "no"})
    await store.fail(two.id, await claim(store, "always_fails"), error, retry_at=None)
    # cancelled while queued; cancelled while running
    three = await app.enqueue("noop", {})
    await store.cancel(three.id)
    four = await app.enqueue("noop", {})
    token = await claim(store, "noop")
    await store.cancel(four.id)
    await store.mark_cancelled(four.id, token)
    # queued again after a lost lease
    five = await app.enqueue("noop", {})
    await claim(store, "noop", lease=-5.0)
    await store.reap(now=time.time())
    return [one.id, two.id, three.id, four.id, five.id]


async def test_every_event_of_every_type_fits_the_published_schema(
    app: Jobwire, http: httpx.AsyncClient
) -> None:
    job_ids = await every_kind_of_event(app.store, app)

    events: list[dict[str, Any]] = []
    for job_id in job_ids:
        response = await http.get(f"/jobs/{job_id}/events", headers={"Accept": "application/json"})
        page = response.json()
        EventPage.model_validate(page)  # the whole page, schema_version included
        assert page["schema_version"] == 1
        events.extend(page["items"])
    for event in events:
        validate_event(event)
        # One instant, two forms: ISO 8601 (as in the job view) and epoch seconds.
        assert datetime.fromisoformat(event["time"]).timestamp() == pytest.approx(event["at"])

    kinds = Counter(e["type"] for e in events)
    assert set(kinds) == {t.value for t in EventType}
    queued = [e["data"] for e in events if e["type"] == "queued"]
    assert any(d.get("released") for d in queued)
    assert any(d.get("lost") for d in queued)
    [succeeded] = [e for e in events if e["type"] == "succeeded"]
    assert succeeded["data"]["result"] == {"ok": True}


def test_an_event_that_breaks_its_types_schema_is_refused() -> None:
    good = {"job_id": "j", "seq": 2, "type": "started", "at": 1.0, "time": "1970-01-01T00:00:01Z"}
    validate_event({**good, "data": {"attempt": 1, "worker": "w"}})
    with pytest.raises(ValidationError):
        validate_event({**good, "data": {"worker": "w"}})  # no attempt
    with pytest.raises(ValidationError):
        validate_event({**good, "type": "exploded", "data": {}})


async def test_the_openapi_document_publishes_the_event_schemas(http: httpx.AsyncClient) -> None:
    openapi = (await http.get("/openapi.json")).json()
    schemas = openapi["components"]["schemas"]
    for kind in EventType:
        name = f"{kind.value.capitalize()}Event"
        assert schemas[name]["properties"]["type"]["const"] == kind.value, name
        assert f"{kind.value.capitalize()}Data" in schemas
    page = schemas["EventPage"]
    assert page["properties"]["items"]["items"]["discriminator"]["propertyName"] == "type"
    ok = openapi["paths"]["/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/EventPage"}
