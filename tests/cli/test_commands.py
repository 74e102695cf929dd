"""The command functions, called in-process against a temporary SQLite store."""

from __future__ import annotations

import asyncio
import json

from jobwire import EventType, Jobwire, State
from jobwire.cli import (
    CancelOptions,
    FollowView,
    ListOptions,
    StatusOptions,
    SubmitOptions,
    run_cancel,
    run_ls,
    run_status,
    run_submit,
)
from jobwire.model import Event
from tests.cli import app as cli_app
from tests.cli.conftest import Captured


async def submit(db_url: str, out: Captured, err: Captured, **options: object) -> tuple[int, str]:
    opts = SubmitOptions(url=db_url, **options)  # type: ignore[arg-type]
    code = await run_submit(opts, out.console, err.console)
    return code, (out.lines[0] if out.lines else "")


async def stored(db_url: str, job_id: str) -> dict[str, object]:
    out = Captured()
    assert await run_status(StatusOptions(job_id, url=db_url, as_json=True), out.console) == 0
    view: dict[str, object] = json.loads(out.text)
    return view


# -- submit -------------------------------------------------------------------------------


async def test_submit_without_app_stores_the_arguments_as_given(
    db_url: str, out: Captured, err: Captured
) -> None:
    code, job_id = await submit(
        db_url,
        out,
        err,
        job="anything",
        args={"n": 10, "name": "bob"},
        queue="cpu",
        priority=5,
        delay=3600,
        force=True,  # no server or worker has registered "anything" in this store
    )
    assert code == 0
    view = await stored(db_url, job_id)
    assert view["job"] == "anything"
    assert view["args"] == {"n": 10, "name": "bob"}
    assert view["state"] == "queued"
    assert view["max_attempts"] == 1
    assert view["queue"] == "cpu"
    assert view["priority"] == 5
    assert view["scheduled_at"] != view["created_at"]


async def test_submit_with_app_validates_and_uses_the_jobs_options(
    db_url: str, out: Captured, err: Captured
) -> None:
    code, job_id = await submit(db_url, out, err, job="flaky", app="tests.cli.app:jobs", delay=3600)
    assert code == 0, err.text
    view = await stored(db_url, job_id)
    assert view["max_attempts"] == 2  # retries=1 on the job


async def test_invalid_arguments_exit_2_naming_the_field_and_store_nothing(
    db_url: str, out: Captured, err: Captured
) -> None:
    code, _ = await submit(
        db_url, out, err, job="add", args={"a": 1, "b": "ten", "c": 3}, app="tests.cli.app:jobs"
    )
    assert code == 2
    assert out.text == ""
    assert "invalid arguments for job 'add'" in err.text
    assert any(line.strip().startswith("b: Input should be a valid integer") for line in err.lines)
    assert any(line.strip().startswith("c: Extra inputs are not permitted") for line in err.lines)
    listing = Captured()
    assert await run_ls(ListOptions(url=db_url, as_json=True), listing.console) == 0
    assert json.loads(listing.text)["items"] == []


async def test_a_missing_argument_is_named(db_url: str, out: Captured, err: Captured) -> None:
    code, _ = await submit(db_url, out, err, job="add", args={"a": 1}, app="tests.cli.app:jobs")
    assert code == 2
    assert any(line.strip() == "b: Field required" for line in err.lines)


async def test_an_unknown_job_with_app_exits_2_listing_the_jobs(
    db_url: str, out: Captured, err: Captured
) -> None:
    code, _ = await submit(db_url, out, err, job="nope", app="tests.cli.app:jobs")
    assert code == 2
    assert "unknown job 'nope'" in err.text
    assert "add, boom" in err.text


async def test_out_of_range_options_exit_2(db_url: str, out: Captured, err: Captured) -> None:
    assert (await submit(db_url, out, err, job="add", priority=5000))[0] == 2
    assert (await submit(db_url, out, err, job="add", delay=-1.0))[0] == 2
    assert (await submit(db_url, out, err, job="add", queue="no spaces"))[0] == 2
    assert out.text == ""


async def test_the_same_idempotency_key_returns_the_same_job(db_url: str, err: Captured) -> None:
    first, second, third = Captured(), Captured(), Captured()
    common = {"job": "add", "app": "tests.cli.app:jobs", "idempotency_key": "k-1", "delay": 60.0}
    code, job_id = await submit(db_url, first, err, args={"a": 1, "b": 2}, **common)
    assert code == 0
    code, again = await submit(db_url, second, err, args={"a": 1, "b": 2}, **common)
    assert code == 0
    assert again == job_id
    assert "an existing job" in err.text
    code, _ = await submit(db_url, third, err, args={"a": 1, "b": 3}, **common)
    assert code == 2
    assert "different request payload" in err.text


# -- submit checks the name against those registered in the store -----------------------


async def serve_without_workers(db_url: str) -> None:
    """Start and stop the test app as a server without workers: it records its names."""
    server = cli_app.jobs.using(db_url, embedded_workers=False)
    async with server.lifespan():
        pass


async def test_submit_without_app_refuses_a_name_nobody_registered_suggesting_one(
    db_url: str, out: Captured, err: Captured
) -> None:
    await serve_without_workers(db_url)
    code, _ = await submit(db_url, out, err, job="cuont", args={"n": 3})
    assert code == 2
    assert out.text == ""
    assert "unknown job 'cuont'; did you mean 'count'?" in err.text
    assert "known jobs: add, boom, collector, count, flaky, square, until_cancelled" in err.text
    assert "--force" in err.text
    listing = Captured()
    assert await run_ls(ListOptions(url=db_url, as_json=True), listing.console) == 0
    assert json.loads(listing.text)["items"] == []


async def test_submit_without_app_takes_a_registered_name(
    db_url: str, out: Captured, err: Captured
) -> None:
    await serve_without_workers(db_url)
    code, job_id = await submit(db_url, out, err, job="count", args={"n": 3}, delay=60.0)
    assert code == 0, err.text
    assert (await stored(db_url, job_id))["job"] == "count"


async def test_a_store_where_nothing_registered_refuses_every_name_without_force(
    db_url: str, out: Captured, err: Captured
) -> None:
    code, _ = await submit(db_url, out, err, job="count")
    assert code == 2
    assert "no server or worker has registered any job in this store yet" in err.text


async def test_force_queues_a_name_nobody_registered(
    db_url: str, out: Captured, err: Captured
) -> None:
    await serve_without_workers(db_url)
    code, job_id = await submit(db_url, out, err, job="cuont", force=True, delay=60.0)
    assert code == 0, err.text
    assert (await stored(db_url, job_id))["job"] == "cuont"


async def test_with_app_the_apps_own_names_decide_not_the_store(
    db_url: str, out: Captured, err: Captured
) -> None:
    # Nothing registered in this store yet: the app's registry is the authority.
    code, _ = await submit(db_url, out, err, job="count", args={"n": 1}, app="tests.cli.app:jobs")
    assert code == 0, err.text
    code, _ = await submit(db_url, Captured(), err, job="cuont", app="tests.cli.app:jobs")
    assert code == 2
    assert "unknown job 'cuont'" in err.text


# -- status says when no live worker runs the job -----------------------------------------


async def test_status_flags_a_queued_job_no_live_worker_runs(
    db_url: str, out: Captured, err: Captured
) -> None:
    await serve_without_workers(db_url)
    _, job_id = await submit(db_url, out, err, job="add", args={"a": 1, "b": 2}, delay=3600.0)
    table = Captured()
    assert await run_status(StatusOptions(job_id, url=db_url), table.console) == 0
    rows = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in table.lines if line}
    assert rows["worker"] == (
        "no live worker runs job 'add' on queue 'default': it stays queued until one starts"
    )
    assert (await stored(db_url, job_id))["no_worker"] is True


async def test_status_does_not_flag_a_job_a_live_worker_runs(
    worker: Jobwire, db_url: str, out: Captured, err: Captured
) -> None:
    _, job_id = await submit(db_url, out, err, job="add", args={"a": 1, "b": 2}, delay=3600.0)
    table = Captured()
    assert await run_status(StatusOptions(job_id, url=db_url), table.console) == 0
    assert not any(line.startswith("worker") for line in table.lines)
    assert (await stored(db_url, job_id))["no_worker"] is False


# -- following ----------------------------------------------------------------------------


async def test_follow_prints_progress_and_output_then_the_result(
    worker: Jobwire, db_url: str, out: Captured, err: Captured
) -> None:
    code, job_id = await submit(db_url, out, err, job="count", args={"n": 3}, follow=True)
    assert code == 0, err.text
    assert out.lines == [job_id, "3"]
    assert 'output {"step":1}' in err.lines
    assert 'output {"step":3}' in err.lines
    assert "progress 3/3 (100%) step 3" in err.lines
    assert any(line.startswith("succeeded") for line in err.lines)


async def test_follow_of_a_failed_job_exits_1_with_its_error(
    worker: Jobwire, db_url: str, out: Captured, err: Captured
) -> None:
    code, _ = await submit(db_url, out, err, job="boom", app="tests.cli.app:jobs", follow=True)
    assert code == 1
    assert "failed after 1 attempt: ValueError: kaboom" in err.lines
    assert len(out.lines) == 1  # the id, and no result


async def test_follow_notes_retries(
    worker: Jobwire, db_url: str, out: Captured, err: Captured
) -> None:
    code, _ = await submit(db_url, out, err, job="flaky", app="tests.cli.app:jobs", follow=True)
    assert code == 0, err.text
    assert any(
        line.startswith("attempt 1 failed: RuntimeError: first attempt fails; retrying in")
        for line in err.lines
    )
    assert out.lines[-1] == "2"


async def test_follow_of_a_cancelled_job_exits_1(
    worker: Jobwire, db_url: str, out: Captured, err: Captured
) -> None:
    code, job_id = await submit(db_url, out, err, job="until_cancelled")
    assert code == 0
    await _until_running(worker, job_id)
    follow = asyncio.create_task(_follow(db_url, job_id))
    cancelled = Captured()
    assert await run_cancel(CancelOptions(job_id, url=db_url), cancelled.console) == 0
    assert "cancel requested" in cancelled.text
    code, text = await asyncio.wait_for(follow, 30)
    assert code == 1
    assert "cancelled after 1 attempt" in text


# -- status, ls, cancel -------------------------------------------------------------------


async def test_status_of_an_unknown_job_exits_1(db_url: str, out: Captured) -> None:
    async with Jobwire(db_url):
        pass  # the store exists; the job does not
    code = await run_status(StatusOptions("01a2-unknown", url=db_url), out.console)
    assert code == 1
    assert "job 01a2-unknown not found" in out.text


async def test_status_shows_the_job(db_url: str, out: Captured, err: Captured) -> None:
    _, job_id = await submit(
        db_url, out, err, job="add", args={"a": 1, "b": 2}, delay=60.0, force=True
    )
    table = Captured()
    assert await run_status(StatusOptions(job_id, url=db_url), table.console) == 0
    rows = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in table.lines if line}
    assert rows["id"] == job_id
    assert rows["state"] == "queued"
    assert rows["args"] == '{"a":1,"b":2}'
    assert rows["attempts"] == "0/1"


async def test_ls_filters_by_state_and_job_and_pages(
    db_url: str, out: Captured, err: Captured
) -> None:
    ids = []
    for name in ("add", "add", "count"):
        _, job_id = await submit(db_url, Captured(), err, job=name, delay=60.0, force=True)
        ids.append(job_id)
    assert await run_cancel(CancelOptions(ids[0], url=db_url), Captured().console) == 0

    async def listing(**options: object) -> dict[str, object]:
        page = Captured()
        opts = ListOptions(url=db_url, as_json=True, **options)  # type: ignore[arg-type]
        code = await run_ls(opts, page.console)
        assert code == 0
        body: dict[str, object] = json.loads(page.text)
        return body

    def item_ids(body: dict[str, object]) -> list[str]:
        return [item["id"] for item in body["items"]]  # type: ignore[attr-defined,index]

    assert item_ids(await listing()) == ids[::-1]  # newest first
    assert item_ids(await listing(states=(State.CANCELLED,))) == [ids[0]]
    assert item_ids(await listing(states=(State.QUEUED,), job="add")) == [ids[1]]
    first = await listing(limit=2)
    assert item_ids(first) == [ids[2], ids[1]]
    assert first["next_cursor"] == ids[1]
    assert item_ids(await listing(before=ids[1])) == [ids[0]]


async def test_ls_table(db_url: str, out: Captured, err: Captured) -> None:
    _, job_id = await submit(db_url, Captured(), err, job="add", delay=60.0, force=True)
    assert await run_ls(ListOptions(url=db_url), out.console, err.console) == 0
    [header, row] = out.lines
    assert header.split()[:3] == ["id", "job", "state"]
    assert row.split()[:4] == [job_id, "add", "queued", "0/1"]


async def test_cancel_a_queued_job_then_again_then_an_unknown_one(
    db_url: str, out: Captured, err: Captured
) -> None:
    _, job_id = await submit(db_url, Captured(), err, job="add", delay=3600.0, force=True)
    assert await run_cancel(CancelOptions(job_id, url=db_url), out.console) == 0
    assert out.lines == [f"cancelled {job_id}"]
    again = Captured()
    assert await run_cancel(CancelOptions(job_id, url=db_url), again.console) == 1
    assert f"job {job_id} is cancelled; cannot cancel it" in again.text
    missing = Captured()
    assert await run_cancel(CancelOptions("nope", url=db_url), missing.console) == 1
    assert "job nope not found" in missing.text
    assert (await stored(db_url, job_id))["state"] == "cancelled"


# -- the live view on a terminal ----------------------------------------------------------


def test_on_a_terminal_outputs_and_retries_print_above_the_bar() -> None:
    screen = Captured(terminal=True)
    retry = {"attempt": 1, "error": {"type": "E", "message": "m"}}
    events = [
        Event("j", 1, EventType.QUEUED, {}, 0.0),
        Event("j", 2, EventType.STARTED, {"attempt": 1, "worker": "w1"}, 0.0),
        Event("j", 3, EventType.PROGRESS, {"current": 1, "total": 4, "message": "one"}, 0.0),
        Event("j", 4, EventType.OUTPUT, {"output": {"page": 1}}, 0.0),
        Event("j", 5, EventType.RETRYING, retry, 0.0),
        Event("j", 6, EventType.SUCCEEDED, {"result": 1}, 0.0),
    ]
    with FollowView(screen.console, "crawl") as view:
        for event in events:
            view.show(event)
        assert view._progress is not None
        [task] = view._progress.tasks
        assert (task.completed, task.total) == (1, 4)
    assert 'output {"page":1}' in screen.text
    assert "attempt 1 failed: E: m" in screen.text
    assert "attempt 1 started on w1" in screen.text


# -- helpers ------------------------------------------------------------------------------


async def _until_running(jobs: Jobwire, job_id: str) -> None:
    async for event in jobs.events(job_id):
        if event.type is EventType.STARTED:
            return
    raise AssertionError(f"job {job_id} ended before it started")


async def _follow(db_url: str, job_id: str) -> tuple[int, str]:
    from jobwire.cli import follow_job

    screen = Captured()
    async with Jobwire(db_url) as jobs:
        code = await follow_job(jobs, job_id, screen.console, screen.console)
    return code, screen.text


async def test_values_print_verbatim_without_markup_or_emoji(
    db_url: str, out: Captured, err: Captured
) -> None:
    args = {"text": "[bold]x[/bold] :thumbs_up:"}
    _, job_id = await submit(db_url, out, err, job="add", args=args, delay=60.0, force=True)
    view = await stored(db_url, job_id)
    assert view["args"] == args
    listing = Captured()
    assert await run_ls(ListOptions(url=db_url, as_json=True), listing.console) == 0
    assert '"[bold]x[/bold] :thumbs_up:"' in listing.text


async def test_a_name_like_no_known_one_is_refused_with_the_known_names_only(
    db_url: str, out: Captured, err: Captured
) -> None:
    await serve_without_workers(db_url)
    code, _ = await submit(db_url, out, err, job="zzzzzz")
    assert code == 2
    assert "unknown job 'zzzzzz'; known jobs: add, boom," in err.text
    assert "did you mean" not in err.text


async def test_a_declared_constraint_is_enforced_at_submit_naming_each_field(
    db_url: str, out: Captured, err: Captured
) -> None:
    args = {"n": 0, "points": [{"x": -1}], "mode": "turbo"}
    code, _ = await submit(
        db_url, out, err, job="constrained", args=args, app="tests.support.jobs:jobs"
    )
    assert code == 2
    assert out.text == ""
    lines = [line.strip() for line in err.lines]
    assert "n: Input should be greater than or equal to 1 (got 0)" in lines
    assert "points.0.x: Input should be greater than or equal to 0 (got -1)" in lines
    assert "mode: Input should be 'fast' or 'slow' (got \"turbo\")" in lines
    listing = Captured()
    assert await run_ls(ListOptions(url=db_url, as_json=True), listing.console) == 0
    assert json.loads(listing.text)["items"] == []
