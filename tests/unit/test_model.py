"""The state machine in ``jobwire.model``: every legal move with its events, every other refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from jobwire import (
    AlreadyTerminal,
    EventType,
    InvalidTransition,
    Job,
    Progress,
    StaleClaim,
    State,
    model,
)
from jobwire.ids import new_job_id
from jobwire.model import STATE_EVENT, Change, EventDraft

NOW = 1_000.0
LEASE = 30.0
TOKEN = "token-1"
JOB_ID = "0192aaaa-0000-7000-8000-000000000001"
ERROR = {"type": "ValueError", "message": "boom"}


def queued(**fields: object) -> Job:
    job = Job(id=JOB_ID, job="crunch", args={"n": 1}, max_attempts=3, **fields)  # type: ignore[arg-type]
    return model.enqueue(job, NOW).job


def running(**fields: object) -> Job:
    job = model.claim(queued(), "w1", TOKEN, NOW, LEASE).job
    return dataclasses.replace(job, **fields) if fields else job


def terminal(state: State) -> Job:
    job = running()
    if state is State.SUCCEEDED:
        return model.succeed(job, TOKEN, 42, NOW).job
    if state is State.FAILED:
        return model.fail(job, TOKEN, ERROR, NOW, None).job
    return model.cancelled(job, TOKEN, NOW).job


def types(change: Change) -> list[EventType]:
    return [event.type for event in change.events]


def assert_numbered_after(before: Job, change: Change) -> None:
    seqs = [event.seq for event in change.events]
    assert seqs == list(range(before.last_seq + 1, before.last_seq + 1 + len(seqs)))
    assert change.job.last_seq == before.last_seq + len(seqs)
    assert all(event.job_id == before.id and event.at == NOW for event in change.events)


def assert_released(job: Job) -> None:
    assert (job.claim_token, job.lease_expires_at, job.worker_id) == (None, None, None)


# -- legal moves ---------------------------------------------------------------------------


def test_enqueue_makes_a_queued_job_whose_first_event_is_queued() -> None:
    job = Job(id=JOB_ID, job="crunch", args={}, queue="cpu", scheduled_at=NOW + 5)
    change = model.enqueue(job, NOW)
    assert change.job.state is State.QUEUED
    assert types(change) == [EventType.QUEUED]
    assert change.events[0].seq == 1
    assert change.events[0].data == {"queue": "cpu", "scheduled_at": NOW + 5}


def test_claim_moves_queued_to_running_with_a_started_event_lease_and_token() -> None:
    before = queued()
    change = model.claim(before, "w1", TOKEN, NOW, LEASE)
    job = change.job
    assert job.state is State.RUNNING
    assert types(change) == [EventType.STARTED]
    assert change.events[0].data == {"attempt": 1, "worker": "w1"}
    assert (job.attempts, job.claim_token, job.worker_id) == (1, TOKEN, "w1")
    assert job.lease_expires_at == NOW + LEASE
    assert job.started_at == NOW
    assert_numbered_after(before, change)


def test_heartbeat_extends_the_lease_and_appends_no_event() -> None:
    change = model.heartbeat(running(), TOKEN, NOW + 10, LEASE)
    assert change.events == ()
    assert change.job.lease_expires_at == NOW + 10 + LEASE
    assert change.job.state is State.RUNNING


def test_report_appends_progress_and_output_in_order_and_keeps_the_latest_progress() -> None:
    before = running()
    drafts = [
        EventDraft(EventType.PROGRESS, {"current": 1, "total": 3, "message": "a"}),
        EventDraft(EventType.OUTPUT, {"output": {"x": 1}}),
        EventDraft(EventType.PROGRESS, {"current": 2, "total": 3, "message": None}),
    ]
    change = model.report(before, TOKEN, drafts, NOW)
    assert types(change) == [EventType.PROGRESS, EventType.OUTPUT, EventType.PROGRESS]
    assert change.job.progress == Progress(2, 3, None)
    assert change.job.state is State.RUNNING
    assert_numbered_after(before, change)


def test_succeed_moves_running_to_succeeded_with_the_result_and_releases_the_claim() -> None:
    before = running()
    change = model.succeed(before, TOKEN, {"total": 9}, NOW + 1)
    assert change.job.state is State.SUCCEEDED
    assert types(change) == [EventType.SUCCEEDED]
    # A small result rides in the event; a large one is kept once, on the job.
    assert change.events[0].data == {"result": {"total": 9}, "attempt": 1}
    assert change.job.result == {"total": 9}
    large = "x" * (model.INLINE_RESULT_BYTES + 1)
    [ref] = model.succeed(before, TOKEN, large, NOW + 1).events
    assert ref.data == {"attempt": 1, "result_ref": True}
    shown = model.with_result(ref, large)
    assert shown.data == {"result": large, "attempt": 1}
    assert change.job.finished_at == NOW + 1
    assert_released(change.job)


def test_a_failed_attempt_with_attempts_left_is_queued_again_with_a_retrying_event() -> None:
    before = running()
    change = model.fail(before, TOKEN, ERROR, NOW, retry_at=NOW + 7)
    assert change.job.state is State.QUEUED
    assert types(change) == [EventType.RETRYING]
    assert change.events[0].data == {"attempt": 1, "error": ERROR, "next_run_at": NOW + 7}
    assert change.job.scheduled_at == NOW + 7
    assert change.job.error == ERROR
    assert change.job.attempts == 1
    assert_released(change.job)


def test_a_failed_attempt_without_a_retry_time_ends_failed() -> None:
    change = model.fail(running(), TOKEN, ERROR, NOW, retry_at=None)
    assert change.job.state is State.FAILED
    assert types(change) == [EventType.FAILED]
    assert change.events[0].data == {"error": ERROR, "attempt": 1}
    assert change.job.finished_at == NOW
    assert_released(change.job)


def test_a_failed_last_attempt_ends_failed_even_when_given_a_retry_time() -> None:
    change = model.fail(running(attempts=3), TOKEN, ERROR, NOW, retry_at=NOW + 1)
    assert change.job.state is State.FAILED
    assert types(change) == [EventType.FAILED]


def test_a_failed_attempt_of_a_job_asked_to_cancel_ends_cancelled_instead_of_retrying() -> None:
    change = model.fail(running(cancel_requested=True), TOKEN, ERROR, NOW, retry_at=NOW + 1)
    assert change.job.state is State.CANCELLED
    assert types(change) == [EventType.CANCELLED]


def test_an_uncharged_retry_is_queued_again_without_counting_the_attempt() -> None:
    change = model.fail(running(attempts=3), TOKEN, ERROR, NOW, NOW + 7, charge=False)
    assert change.job.state is State.QUEUED  # even its last attempt: nothing was spent
    assert change.job.attempts == 2 and change.job.scheduled_at == NOW + 7
    assert change.events[0].type is EventType.RETRYING
    assert change.events[0].data == {
        "attempt": 3,
        "error": ERROR,
        "next_run_at": NOW + 7,
        "charged": False,
    }
    assert_released(change.job)


def test_an_uncharged_retry_of_a_job_asked_to_cancel_ends_cancelled() -> None:
    job = running(cancel_requested=True)
    change = model.fail(job, TOKEN, ERROR, NOW, NOW + 1, charge=False)
    assert change.job.state is State.CANCELLED


def test_a_queued_job_past_its_expiry_is_cancelled_as_expired() -> None:
    job = queued(options={model.EXPIRES_AT_OPTION: NOW - 1})
    assert model.expires_at(job) == NOW - 1 and model.expired(job, NOW)
    change = model.expire_unstarted(job, NOW)
    assert change.job.state is State.CANCELLED and change.job.finished_at == NOW
    assert types(change) == [EventType.CANCELLED]
    assert change.events[0].data == {"reason": "expired"}


def test_a_job_not_yet_expired_or_not_queued_is_not_cancelled_as_expired() -> None:
    assert not model.expired(queued(), NOW)
    with pytest.raises(InvalidTransition, match="not expired"):
        model.expire_unstarted(queued(options={model.EXPIRES_AT_OPTION: NOW + 1}), NOW)
    with pytest.raises(InvalidTransition, match="running"):
        model.expire_unstarted(running(options={model.EXPIRES_AT_OPTION: NOW - 1}), NOW)
    with pytest.raises(AlreadyTerminal):
        model.expire_unstarted(terminal(State.SUCCEEDED), NOW)


def test_release_requeues_now_without_charging_the_attempt() -> None:
    change = model.release(running(), TOKEN, NOW + 3)
    assert change.job.state is State.QUEUED
    assert types(change) == [EventType.QUEUED]
    assert change.events[0].data["released"] is True
    assert change.job.attempts == 0
    assert change.job.scheduled_at == NOW + 3
    assert_released(change.job)


def test_release_of_a_job_asked_to_cancel_ends_it_cancelled() -> None:
    change = model.release(running(cancel_requested=True), TOKEN, NOW)
    assert change.job.state is State.CANCELLED
    assert types(change) == [EventType.CANCELLED]


def test_an_expired_lease_requeues_at_once_without_charging_the_attempt() -> None:
    later = NOW + LEASE + 1
    change = model.expire(running(), later)
    assert change.job.state is State.QUEUED
    assert types(change) == [EventType.QUEUED]
    lost = change.events[0].data
    assert (lost["lost"], lost["attempt"], lost["crashes"], lost["worker"]) == (True, 1, 1, "w1")
    assert change.job.attempts == 0, "a lost lease is not the job's fault: retries untouched"
    assert change.job.crashes == 1
    assert later <= change.job.scheduled_at <= later + model.CRASH_SPREAD_SECONDS
    assert lost["next_run_at"] == change.job.scheduled_at
    assert change.job.error is not None and change.job.error["type"] == "LeaseExpired"
    assert_released(change.job)


def test_a_job_without_retries_survives_lost_leases_until_its_crash_budget() -> None:
    job = model.enqueue(Job(id=JOB_ID, job="crunch", args={}, max_attempts=1), NOW).job
    for crash in range(1, model.DEFAULT_MAX_CRASHES):
        job = model.claim(job, "w1", TOKEN, NOW, LEASE).job
        job = model.expire(job, NOW + LEASE).job
        assert (job.state, job.attempts, job.crashes) == (State.QUEUED, 0, crash)
    job = model.claim(job, "w1", TOKEN, NOW, LEASE).job
    change = model.expire(job, NOW + LEASE)
    assert change.job.state is State.FAILED
    assert types(change) == [EventType.FAILED]
    error = change.events[0].data["error"]
    assert error["type"] == "CrashBudgetExhausted"
    assert f"lost its worker {model.DEFAULT_MAX_CRASHES} times" in error["message"]
    assert change.job.crashes == model.DEFAULT_MAX_CRASHES


def test_jobs_lost_together_are_due_again_spread_over_a_window_that_doubles() -> None:
    ids = [new_job_id() for _ in range(200)]
    for crashes, window in [(1, 1.0), (2, 2.0), (3, 4.0), (9, 30.0)]:
        spreads = [model.crash_spread(job_id, crashes) for job_id in ids]
        assert all(0.0 <= s < window for s in spreads)
        assert len(set(spreads)) > 150, "jobs lost together are not due together"
        assert max(spreads) > window * 0.8
    assert model.crash_spread("not-hex!", 1) == 0.0


def test_a_crash_budget_set_on_the_job_is_honoured() -> None:
    job = model.enqueue(Job(id=JOB_ID, job="crunch", args={}, options={"max_crashes": 1}), NOW).job
    job = model.claim(job, "w1", TOKEN, NOW, LEASE).job
    assert job.max_crashes == 1
    assert model.expire(job, NOW + LEASE).job.state is State.FAILED


def test_lost_leases_and_failures_spend_separate_budgets() -> None:
    job = running(crashes=model.DEFAULT_MAX_CRASHES - 1)  # max_attempts=3
    job = model.fail(job, TOKEN, ERROR, NOW, NOW).job
    assert (job.state, job.attempts, job.crashes) == (State.QUEUED, 1, 2)
    job = model.claim(job, "w1", TOKEN, NOW, LEASE).job
    assert model.expire(job, NOW + LEASE).job.state is State.FAILED


def test_an_expired_lease_of_a_job_asked_to_cancel_ends_cancelled() -> None:
    change = model.expire(running(cancel_requested=True), NOW + LEASE)
    assert change.job.state is State.CANCELLED
    assert types(change) == [EventType.CANCELLED]


def test_cancel_of_a_queued_job_cancels_it_at_once() -> None:
    change = model.request_cancel(queued(), NOW)
    assert change.job.state is State.CANCELLED
    assert types(change) == [EventType.CANCELLED]
    assert change.job.finished_at == NOW
    assert change.job.cancel_requested


def test_cancel_of_a_running_job_only_flags_it_for_its_worker() -> None:
    before = running()
    change = model.request_cancel(before, NOW)
    assert change.events == ()
    assert change.job.state is State.RUNNING
    assert change.job.cancel_requested
    assert change.job.claim_token == TOKEN


def test_the_worker_marks_a_running_job_cancelled() -> None:
    change = model.cancelled(running(cancel_requested=True), TOKEN, NOW)
    assert change.job.state is State.CANCELLED
    assert types(change) == [EventType.CANCELLED]
    assert change.events[0].data["attempt"] == 1
    assert_released(change.job)


def test_every_move_into_a_state_is_recorded_by_that_states_event() -> None:
    moves: list[Change] = [
        model.enqueue(Job(id=JOB_ID, job="crunch", args={}), NOW),
        model.claim(queued(), "w1", TOKEN, NOW, LEASE),
        model.succeed(running(), TOKEN, None, NOW),
        model.fail(running(), TOKEN, ERROR, NOW, None),
        model.cancelled(running(), TOKEN, NOW),
        model.request_cancel(queued(), NOW),
        model.release(running(), TOKEN, NOW),
        model.expire_unstarted(queued(options={model.EXPIRES_AT_OPTION: NOW}), NOW),
    ]
    for change in moves:
        assert types(change) == [STATE_EVENT[change.job.state]]


# -- refused moves ---------------------------------------------------------------------------

TERMINAL = [State.SUCCEEDED, State.FAILED, State.CANCELLED]

FencedMove = Callable[[Job, str], Change]

FENCED: dict[str, FencedMove] = {
    "heartbeat": lambda job, token: model.heartbeat(job, token, NOW, LEASE),
    "report": lambda job, token: model.report(
        job, token, [EventDraft(EventType.OUTPUT, {"output": 1})], NOW
    ),
    "succeed": lambda job, token: model.succeed(job, token, 1, NOW),
    "fail": lambda job, token: model.fail(job, token, ERROR, NOW, NOW + 1),
    "release": lambda job, token: model.release(job, token, NOW),
    "cancelled": lambda job, token: model.cancelled(job, token, NOW),
}


@pytest.mark.parametrize("move", list(FENCED))
def test_a_fenced_move_with_another_claim_token_is_refused_as_stale(move: str) -> None:
    job = running()
    with pytest.raises(StaleClaim, match=JOB_ID) as caught:
        FENCED[move](job, "token-of-an-older-attempt")
    assert "claim token is no longer current" in str(caught.value)


@pytest.mark.parametrize("state", TERMINAL)
@pytest.mark.parametrize("move", list(FENCED))
def test_a_fenced_move_on_a_finished_job_is_refused_as_stale(move: str, state: State) -> None:
    with pytest.raises(StaleClaim):
        FENCED[move](terminal(state), TOKEN)


@pytest.mark.parametrize("move", list(FENCED))
def test_a_fenced_move_on_a_queued_job_is_refused(move: str) -> None:
    # A queued job holds no token: whatever token comes is not its current one.
    with pytest.raises(StaleClaim):
        FENCED[move](queued(), TOKEN)


def test_a_fenced_move_with_the_right_token_on_a_job_not_running_names_state_and_action() -> None:
    job = dataclasses.replace(queued(), claim_token=TOKEN)
    with pytest.raises(InvalidTransition) as caught:
        model.succeed(job, TOKEN, 1, NOW)
    assert not isinstance(caught.value, AlreadyTerminal)
    assert str(caught.value) == f"job {JOB_ID} is queued; cannot move to succeeded"


@pytest.mark.parametrize("state", [State.RUNNING, *TERMINAL])
def test_claim_of_a_job_that_is_not_queued_names_its_state(state: State) -> None:
    job = running() if state is State.RUNNING else terminal(state)
    with pytest.raises(InvalidTransition) as caught:
        model.claim(job, "w2", "token-2", NOW, LEASE)
    assert str(caught.value) == f"job {JOB_ID} is {state.value}; cannot move to running"


@pytest.mark.parametrize("state", TERMINAL)
def test_cancel_of_a_finished_job_is_refused_as_already_terminal(state: State) -> None:
    with pytest.raises(AlreadyTerminal) as caught:
        model.request_cancel(terminal(state), NOW)
    assert str(caught.value) == f"job {JOB_ID} is {state.value}; cannot cancel it"
    assert caught.value.state == state.value


def test_enqueue_of_a_job_that_already_has_events_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="is queued; cannot enqueue it twice"):
        model.enqueue(queued(), NOW)


def test_report_of_an_event_other_than_progress_or_output_is_refused() -> None:
    draft = EventDraft(EventType.SUCCEEDED, {"result": 1})
    with pytest.raises(InvalidTransition, match="is running; cannot report a succeeded event"):
        model.report(running(), TOKEN, [draft], NOW)


@pytest.mark.parametrize("state", [State.QUEUED, *TERMINAL])
def test_expire_of_a_job_that_is_not_running_names_its_state(state: State) -> None:
    job = queued() if state is State.QUEUED else terminal(state)
    with pytest.raises(InvalidTransition, match=f"is {state.value}; cannot expire its lease"):
        model.expire(job, NOW + 10 * LEASE)


def test_expire_of_a_job_whose_lease_is_still_live_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="running with a live lease; cannot expire"):
        model.expire(running(), NOW + LEASE / 2)


def test_terminal_states_and_events_are_exactly_the_three_endings() -> None:
    assert {s for s in State if s.terminal} == set(TERMINAL)
    assert {e for e in EventType if e.terminal} == {
        EventType.SUCCEEDED,
        EventType.FAILED,
        EventType.CANCELLED,
    }
