"""The store contract, continued: schedule states and bulk cancel, on every engine."""

from __future__ import annotations

import asyncio

from jobwire.ids import new_job_id
from jobwire.store.base import ScheduleState, Store


async def test_a_schedule_first_seen_is_stored_once_unpaused_from_that_time(store: Store) -> None:
    first = await store.track_schedules(["nightly", "hourly"], 100.0)
    assert first == {
        "nightly": ScheduleState("nightly", since=100.0, updated_at=100.0),
        "hourly": ScheduleState("hourly", since=100.0, updated_at=100.0),
    }
    # Another scheduler seeing them later changes nothing: the first sighting holds.
    again = await store.track_schedules(["nightly", "hourly", "weekly"], 250.0)
    assert again["nightly"] == first["nightly"]
    assert again["weekly"].since == 250.0


async def test_concurrent_schedulers_create_one_state(store: Store) -> None:
    seen = await asyncio.gather(*(store.track_schedules(["s"], float(t)) for t in range(1, 9)))
    assert len({states["s"].since for states in seen}) == 1


async def test_a_fire_moves_since_and_last_fire_forward_never_back(store: Store) -> None:
    await store.track_schedules(["s"], 100.0)
    newer, older = new_job_id(), new_job_id()
    await store.record_schedule_fire("s", 160.0, newer, 161.0)
    await store.record_schedule_fire("s", 120.0, older, 162.0)  # a late scheduler
    await store.record_schedule_fire("s", 160.0, newer, 163.0)  # the same tick again
    state = (await store.track_schedules(["s"], 999.0))["s"]
    assert (state.since, state.last_fire_at, state.last_job_id) == (160.0, 160.0, newer)
    assert state.paused is False


async def test_a_fire_of_a_schedule_never_tracked_stores_it(store: Store) -> None:
    job_id = new_job_id()
    await store.record_schedule_fire("fresh", 50.5, job_id, 51.0)
    state = (await store.track_schedules(["fresh"], 999.0))["fresh"]
    assert (state.since, state.last_fire_at, state.last_job_id) == (50.5, 50.5, job_id)


async def test_pause_holds_and_resume_skips_the_ticks_passed_while_paused(store: Store) -> None:
    await store.track_schedules(["s"], 100.0)
    job_id = new_job_id()
    await store.record_schedule_fire("s", 110.0, job_id, 111.0)
    paused = await store.set_schedule_paused("s", True, 120.0)
    assert (paused.paused, paused.since, paused.last_job_id) == (True, 110.0, job_id)
    assert (await store.track_schedules(["s"], 130.0))["s"].paused is True
    again = await store.set_schedule_paused("s", True, 140.0)  # pausing twice: no change
    assert again.since == 110.0
    resumed = await store.set_schedule_paused("s", False, 200.0)
    assert (resumed.paused, resumed.since, resumed.last_fire_at) == (False, 200.0, 110.0)
    # Resuming one that is not paused does not skip anything.
    assert (await store.set_schedule_paused("s", False, 300.0)).since == 200.0


async def test_pausing_an_unknown_schedule_stores_it_paused(store: Store) -> None:
    state = await store.set_schedule_paused("later", True, 70.0)
    assert (state.name, state.paused, state.since) == ("later", True, 70.0)
    assert (await store.track_schedules(["later"], 80.0))["later"].paused is True


async def test_names_with_separators_are_kept_apart(store: Store) -> None:
    await store.track_schedules(["a:b", "a%3Ab", "a"], 1.0)
    await store.set_schedule_paused("a:b", True, 2.0)
    states = await store.track_schedules(["a:b", "a%3Ab", "a"], 3.0)
    assert [states[n].paused for n in ("a:b", "a%3Ab", "a")] == [True, False, False]
