"""Workflows on every engine: the store keeps them whole and ends them once; chains pass
results along, a fan-in receives its group's results in order and runs once however
many processes race, a failed step fails its dependants, cancel stops the rest; over
HTTP, 422 names the step and field, and nobody sees another owner's workflow."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from jobwire import InvalidWorkflow, JobContext, Jobwire, WorkflowEnded, chain, group
from jobwire.ids import new_job_id
from jobwire.model import EventType, State
from jobwire.services.workflows import WorkflowService
from jobwire.store.base import ListQuery, Store, WorkflowRecord, WorkflowState
from jobwire.workflows import DEPENDENCY_FAILED, WORKFLOW_CANCELLED, WORKFLOW_FAILED

flows = Jobwire()


@flows.job
async def seed(n: int) -> int:
    return n


@flows.job
async def double(previous: int) -> int:
    return previous * 2


@flows.job
async def collect(previous: list[int], label: str = "") -> dict[str, object]:
    return {"label": label, "got": previous}


@flows.job
async def boom(previous: int) -> None:
    raise ValueError(f"no good: {previous}")


@flows.job
async def shout(previous: str) -> str:
    return previous.upper()


@flows.job
async def hold(ctx: JobContext) -> None:
    while True:
        ctx.check_cancelled()
        await asyncio.sleep(0.01)


# -- the store's part ---------------------------------------------------------------------


def record(owner: str = "alice", at: float = 100.0) -> WorkflowRecord:
    steps = [{"name": "0", "job": "seed", "args": {"n": 1}, "after": [], "receive": None}]
    return WorkflowRecord(new_job_id(), owner, steps, created_at=at, updated_at=at)


async def test_a_workflow_is_stored_whole_and_read_back_by_its_owner_only(store: Store) -> None:
    stored = record()
    await store.create_workflow(stored)
    assert await store.get_workflow(stored.id) == stored
    assert await store.get_workflow(stored.id, "alice") == stored
    assert await store.get_workflow(stored.id, "bob") is None
    assert await store.get_workflow(new_job_id()) is None


async def test_open_workflows_are_the_running_ones_oldest_first(store: Store) -> None:
    later, earlier, ended = record(at=300.0), record(at=200.0), record(at=100.0)
    for workflow in (later, earlier, ended):
        await store.create_workflow(workflow)
    await store.end_workflow(ended.id, WorkflowState.SUCCEEDED, 400.0)
    assert [w.id for w in await store.open_workflows()] == [earlier.id, later.id]
    assert [w.id for w in await store.open_workflows(limit=1)] == [earlier.id]


async def test_a_workflow_ends_once_however_many_race_to_end_it(store: Store) -> None:
    stored = record()
    await store.create_workflow(stored)
    states = [WorkflowState.SUCCEEDED, WorkflowState.CANCELLED, WorkflowState.FAILED] * 3
    answers = await asyncio.gather(*(store.end_workflow(stored.id, s, 500.0) for s in states))
    winners = [a for a in answers if a is not None]
    assert len(winners) == 1
    assert (await store.get_workflow(stored.id)) == winners[0]
    assert winners[0].state is not WorkflowState.RUNNING and winners[0].updated_at == 500.0
    assert await store.end_workflow(new_job_id(), WorkflowState.FAILED, 1.0) is None


# -- running them, with a real worker ------------------------------------------------------


@pytest.fixture
async def app(store: Store) -> AsyncIterator[Jobwire]:
    app = Jobwire(
        store=store,
        poll_seconds=0.2,
        workflow_interval_seconds=0.05,
        api_keys="ka=alice,kb=bob",
    )
    app.registry = dict(flows.registry)
    async with app:
        yield app
        await app.stop_services()
        if app.worker is not None:
            await app.worker.drain(grace=2.0)


@pytest.fixture
async def running(app: Jobwire) -> Jobwire:
    """The app with its worker and services (the workflow service among them)."""
    await app.start_worker()
    await app.start_services()
    return app


@pytest.fixture
async def http(app: Jobwire) -> AsyncIterator[httpx.AsyncClient]:
    api = FastAPI()
    api.include_router(app.router, prefix="/jobs")
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://localhost", headers={"Authorization": "Bearer ka"}
    ) as client:
        yield client


async def jobs_named(store: Store, name: str) -> list[str]:
    page = await store.list(ListQuery(job=name, limit=500))
    return [job.id for job in page.items]


async def test_a_chain_passes_each_result_to_the_next_step(running: Jobwire) -> None:
    flow = chain(seed.si(n=3), double.s(), double.s())
    submitted = await running.submit_workflow(flow, owner="alice")
    done = await running.wait_workflow(submitted.id, timeout=20)
    assert done.state == "succeeded"
    assert [done.result(name) for name in ("0", "1", "2")] == [3, 6, 12]
    assert [s.state for s in done.steps] == ["succeeded"] * 3


async def test_a_fan_in_receives_its_groups_results_in_order_and_runs_once(
    running: Jobwire,
) -> None:
    # Three more processes' workflow services race the app's own for every step.
    racers = [WorkflowService(running.store, running._start_step, 0.01) for _ in range(3)]
    for racer in racers:
        racer.start()
    try:
        members = [chain(seed.si(n=n), double.s()) for n in (5, 1, 4, 2, 3)]
        flow = chain(group(*members), collect.s(label="sum"))
        submitted = await running.submit_workflow(flow, owner="alice")
        done = await running.wait_workflow(submitted.id, timeout=30)
    finally:
        for racer in racers:
            await racer.stop()
    assert done.state == "succeeded"
    assert done.result(done.steps[-1].step.name) == {"label": "sum", "got": [10, 2, 8, 4, 6]}
    assert len(await jobs_named(running.store, "collect")) == 1
    assert len(await jobs_named(running.store, "seed")) == 5


async def test_a_group_of_one_still_hands_its_fan_in_a_list(running: Jobwire) -> None:
    submitted = await running.submit_workflow(chain(group(seed.si(n=7)), collect.s()))
    done = await running.wait_workflow(submitted.id, timeout=20)
    assert done.result("1") == {"label": "", "got": [7]}


async def test_a_failed_step_fails_its_dependants_and_the_workflow(running: Jobwire) -> None:
    flow = chain(seed.si(n=1), boom.s(), double.s(), group(double.s(), double.s()))
    submitted = await running.submit_workflow(flow)
    done = await running.wait_workflow(submitted.id, timeout=20)
    assert done.state == "failed"
    assert [s.state for s in done.steps] == ["succeeded", "failed"] + ["cancelled"] * 3
    assert [s.reason for s in done.steps[2:]] == [DEPENDENCY_FAILED] * 3
    assert all(s.job is None for s in done.steps[2:])  # never enqueued
    assert await jobs_named(running.store, "double") == []


async def test_cancelling_a_workflow_cancels_what_runs_and_what_waits(running: Jobwire) -> None:
    submitted = await running.submit_workflow(chain(hold.si(), double.s()))
    first = submitted.steps[0].job
    assert first is not None  # the first steps are enqueued at submit
    async for event in running.events(first.id):
        if event.type is EventType.STARTED:
            break
    cancelled = await running.cancel_workflow(submitted.id)
    assert cancelled.state == "cancelled"
    done = await running.wait(first.id, timeout=10)
    assert done.state is State.CANCELLED
    after = await running.workflow(submitted.id)
    assert after is not None
    assert [s.state for s in after.steps] == ["cancelled", "cancelled"]
    assert after.steps[1].reason == WORKFLOW_CANCELLED and after.steps[1].job is None
    with pytest.raises(WorkflowEnded):
        await running.cancel_workflow(submitted.id)


async def test_python_submit_refuses_a_bad_step_naming_it(app: Jobwire) -> None:
    with pytest.raises(InvalidWorkflow) as refused:
        await app.submit_workflow(chain(seed.si(n=1), double.s(), seed.si(n="many")))
    assert [e["loc"] for e in refused.value.errors] == [("steps", 2, "args", "n")]
    with pytest.raises(InvalidWorkflow) as no_param:
        await app.submit_workflow(chain(seed.si(n=1), seed.s(n=2)))  # seed has no "previous"
    assert [e["loc"] for e in no_param.value.errors] == [("steps", 1, "receive")]
    assert await app.store.open_workflows() == []


# -- over HTTP -------------------------------------------------------------------------------


async def test_http_submit_runs_the_graph_and_each_step_links_to_its_workflow(
    running: Jobwire, http: httpx.AsyncClient
) -> None:
    document = {
        "steps": [
            {"name": "a", "job": "seed", "args": {"n": 2}},
            {"name": "b", "job": "seed", "args": {"n": 5}},
            {"name": "sum", "job": "collect", "after": ["a", "b"], "receive": "previous"},
        ]
    }
    response = await http.post("/jobs/workflows", json=document)
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/jobs/workflows/{body['id']}"
    assert [s["name"] for s in body["steps"]] == ["a", "b", "sum"]
    done = await running.wait_workflow(body["id"], timeout=20)
    view = (await http.get(f"/jobs/workflows/{body['id']}")).json()
    assert view["state"] == "succeeded"
    assert [s["state"] for s in view["steps"]] == ["succeeded"] * 3
    assert done.result("sum") == {"label": "", "got": [2, 5]}
    step = (await http.get(view["steps"][2]["links"]["job"])).json()
    assert step["workflow"] == {"id": body["id"], "step": "sum"}
    assert step["links"]["workflow"] == f"/jobs/workflows/{body['id']}"


async def test_http_422_names_the_step_and_the_field(app: Jobwire, http: httpx.AsyncClient) -> None:
    document = {
        "steps": [
            {"job": "seed", "args": {"n": 1}},
            {"job": "double", "after": ["0"], "receive": "previous"},
            {"job": "seed", "args": {"n": "lots"}, "after": ["1"]},
            {"job": "nope", "after": ["zz"]},
        ]
    }
    response = await http.post("/jobs/workflows", json=document)
    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["detail"]]
    assert ["body", "steps", 2, "args", "n"] in locs
    assert ["body", "steps", 3, "after", 0] in locs
    assert ["body", "steps", 3, "job"] in locs
    bad_shape = await http.post("/jobs/workflows", json={"steps": [{"job": "seed", "x": 1}]})
    assert bad_shape.status_code == 422
    assert bad_shape.json()["detail"][0]["loc"] == ["body", "steps", 0, "x"]
    not_json = await http.post(
        "/jobs/workflows", content=b"steps", headers={"content-type": "text/plain"}
    )
    assert not_json.status_code == 415
    assert await app.store.open_workflows() == []


async def test_another_owners_workflow_is_not_found_on_any_route(
    app: Jobwire, http: httpx.AsyncClient
) -> None:
    mine = await http.post("/jobs/workflows", json={"steps": [{"job": "hold"}]})
    assert mine.status_code == 202, mine.text
    workflow_id = mine.json()["id"]
    bob = {"Authorization": "Bearer kb"}
    assert (await http.get(f"/jobs/workflows/{workflow_id}", headers=bob)).status_code == 404
    refused = await http.post(f"/jobs/workflows/{workflow_id}/cancel", headers=bob)
    assert refused.status_code == 404
    assert (await http.get(f"/jobs/workflows/{workflow_id}")).json()["state"] == "running"
    cancelled = await http.post(f"/jobs/workflows/{workflow_id}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["steps"][0]["state"] == "cancelled"
    again = await http.post(f"/jobs/workflows/{workflow_id}/cancel")
    assert again.status_code == 409


def sse_events(text: str) -> list[tuple[str, dict[str, object]]]:
    frames = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "data" in fields:
            frames.append((fields.get("event", "message"), json.loads(fields["data"])))
    return frames


async def test_the_workflow_stream_carries_every_steps_events_then_its_end(
    running: Jobwire, http: httpx.AsyncClient
) -> None:
    document = {
        "steps": [
            {"job": "seed", "args": {"n": 3}},
            {"job": "double", "after": ["0"], "receive": "previous"},
        ]
    }
    workflow_id = (await http.post("/jobs/workflows", json=document)).json()["id"]
    other = await running.submit_workflow(chain(seed.si(n=1)), owner="alice")  # not in it
    bob = {"Authorization": "Bearer kb"}
    refused = await http.get(f"/jobs/workflows/{workflow_id}/events", headers=bob)
    assert refused.status_code == 404
    # From the start of the feed; the stream ends once the workflow has ended.
    response = await http.get(f"/jobs/workflows/{workflow_id}/events", params={"after": 0})
    assert response.status_code == 200
    frames = sse_events(response.text)
    steps = (await running.workflow(workflow_id)).steps  # type: ignore[union-attr]
    first, second = (s.job.id for s in steps)  # type: ignore[union-attr]
    assert [(kind, data["job_id"]) for kind, data in frames if kind == "succeeded"] == [
        ("succeeded", first),
        ("succeeded", second),
    ]
    assert {data.get("job_id") for _, data in frames[:-1]} == {first, second}
    other_job = other.steps[0].job
    assert other_job is not None and other_job.id not in {d.get("job_id") for _, d in frames}
    assert frames[-1] == ("workflow", {"workflow_id": workflow_id, "state": "succeeded"})
    ended = await http.get(f"/jobs/workflows/{workflow_id}/events")
    assert ended.status_code == 204  # ended, and no position to replay from


async def test_a_process_without_a_steps_job_leaves_that_step_to_one_that_has_it(
    app: Jobwire,
) -> None:
    submitted = await app.submit_workflow(chain(seed.si(n=2), double.s()))
    [claim] = await app.store.claim("w", ["default"], ["seed"], 1, 30.0)
    await app.store.finish(claim.job.id, claim.token, 2)
    partial = Jobwire(store=app.store, embedded_workers=False)  # registers seed only
    partial.registry = {"seed": app.registry["seed"]}
    assert await WorkflowService(app.store, partial._start_step, 1.0).run_once() == 0
    assert await jobs_named(app.store, "double") == []
    assert await WorkflowService(app.store, app._start_step, 1.0).run_once() == 1
    [started] = await jobs_named(app.store, "double")
    job = await app.store.get(started)
    assert job is not None and job.args == {"previous": 2}
    assert job.options["workflow"] == submitted.id and job.options["step"] == "1"


async def test_a_result_that_does_not_fit_the_next_step_fails_the_workflow(
    running: Jobwire,
) -> None:
    submitted = await running.submit_workflow(chain(seed.si(n=1), shout.s()))  # int → str
    done = await running.wait_workflow(submitted.id, timeout=20)
    assert done.state == "failed"
    assert [(s.state, s.reason) for s in done.steps] == [
        ("succeeded", None),
        ("cancelled", WORKFLOW_FAILED),
    ]
