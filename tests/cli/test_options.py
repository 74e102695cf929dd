"""Parsing and checking what the user typed, before anything touches a store."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from jobwire import State
from jobwire.cli import (
    CliError,
    WorkerOptions,
    cli,
    configured,
    load_jobwire,
    parse_assignments,
    parse_queues,
    parse_states,
    redact,
)
from jobwire.settings import env_name
from tests.cli import app as cli_app


def test_values_are_json_when_valid_json_else_strings() -> None:
    args = parse_assignments(
        ["n=10", "name=bob", 'urls=["a","b"]', "ratio=0.5", "ok=true", "none=null", 'quoted="10"']
    )
    assert args == {
        "n": 10,
        "name": "bob",
        "urls": ["a", "b"],
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "quoted": "10",
    }


def test_a_value_may_contain_equals_signs_and_be_empty() -> None:
    assert parse_assignments(["q=a=b", "empty="]) == {"q": "a=b", "empty": ""}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["novalue"], "expected KEY=VALUE"),
        (["=1"], "not a valid identifier"),
        (["a-b=1"], "not a valid identifier"),
        (["n=1", "n=2"], "given twice"),
    ],
)
def test_malformed_assignments_are_refused(items: list[str], message: str) -> None:
    with pytest.raises(CliError, match=message) as caught:
        parse_assignments(items)
    assert caught.value.code == 2


def test_queues_are_comma_separated_and_checked() -> None:
    assert parse_queues("default, cpu") == ("default", "cpu")
    assert parse_queues(None) is None
    with pytest.raises(CliError, match="queue name"):
        parse_queues("default,bad queue")
    with pytest.raises(CliError, match="comma-separated"):
        parse_queues(" , ")


def test_states_repeat_or_comma_separate() -> None:
    assert parse_states(["queued,running", "failed", "queued"]) == (
        State.QUEUED,
        State.RUNNING,
        State.FAILED,
    )
    with pytest.raises(CliError, match="unknown state 'done'"):
        parse_states(["done"])


def test_passwords_are_hidden_when_urls_are_printed() -> None:
    assert redact("postgresql://app:s3cret@db:5432/jobs") == "postgresql://app:***@db:5432/jobs"
    assert redact("sqlite:///./jobwire.db") == "sqlite:///./jobwire.db"


def test_loads_the_named_jobwire_instance() -> None:
    assert load_jobwire("tests.cli.app:jobs") is cli_app.jobs


def test_a_module_with_one_jobwire_needs_no_attribute() -> None:
    assert load_jobwire("tests.cli.app") is cli_app.jobs


def test_a_fastapi_app_is_refused_naming_what_was_found_and_the_instance_to_use() -> None:
    with pytest.raises(CliError) as caught:
        load_jobwire("tests.cli.app:web")
    message = str(caught.value)
    assert "fastapi.applications.FastAPI" in message
    assert "not a Jobwire instance" in message
    assert "tests.cli.app:jobs" in message


def test_a_missing_attribute_or_module_is_a_clear_error() -> None:
    with pytest.raises(CliError, match=r"has no attribute 'nope'.*tests\.cli\.app:jobs"):
        load_jobwire("tests.cli.app:nope")
    with pytest.raises(CliError, match=r"cannot import 'tests\.cli\.no_such_module'"):
        load_jobwire("tests.cli.no_such_module:jobs")
    with pytest.raises(CliError, match="expected MODULE:ATTR"):
        load_jobwire("tests.cli.app:")


def test_overrides_make_a_new_instance_with_the_same_jobs() -> None:
    jobs = configured(
        cli_app.jobs,
        url="sqlite:////tmp/elsewhere.db",
        queues=("a", "b"),
        async_concurrency=3,
        process_concurrency=None,
    )
    assert jobs is not cli_app.jobs
    assert jobs.settings.url == "sqlite:////tmp/elsewhere.db"
    assert jobs.settings.queues == ("a", "b")
    assert jobs.settings.async_concurrency == 3
    assert jobs.settings.process_concurrency == cli_app.jobs.settings.process_concurrency
    assert set(jobs.registry) == set(cli_app.jobs.registry)
    assert cli_app.jobs.settings.queues == ("default",)


def test_no_overrides_keep_the_instance() -> None:
    assert configured(cli_app.jobs, url=None, queues=None) is cli_app.jobs


def test_an_invalid_override_is_a_usage_error() -> None:
    with pytest.raises(CliError, match="JOBWIRE_ASYNC_CONCURRENCY") as caught:
        configured(cli_app.jobs, async_concurrency=0)
    assert caught.value.code == 2


SETTING_OPTIONS = {
    ("worker", "url"): "url",
    ("worker", "queues"): "queues",
    ("worker", "concurrency"): "async_concurrency",
    ("worker", "processes"): "process_concurrency",
    ("worker", "threads"): "thread_concurrency",
    ("submit", "url"): "url",
    ("status", "url"): "url",
    ("ls", "url"): "url",
    ("cancel", "url"): "url",
}


@pytest.mark.parametrize(("where", "setting"), SETTING_OPTIONS.items())
def test_each_option_for_a_setting_shows_its_environment_variable(
    where: tuple[str, str], setting: str
) -> None:
    group: Any = typer.main.get_command(cli)
    command = group.commands[where[0]]
    [option] = [p for p in command.params if p.name == where[1]]
    assert option.envvar == env_name(setting)
    assert option.show_envvar


def test_help_lists_the_environment_variables() -> None:
    result = CliRunner().invoke(cli, ["worker", "--help"], env={"TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0
    for name in ("url", "queues", "async_concurrency", "process_concurrency", "thread_concurrency"):
        assert env_name(name) in result.output


def test_the_environment_sets_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, WorkerOptions] = {}

    async def fake_run(opts: WorkerOptions, out: object, err: object = None) -> int:
        seen["opts"] = opts
        return 0

    monkeypatch.setattr("jobwire.cli.run_worker", fake_run)
    monkeypatch.setattr("jobwire.cli._setup_logging", lambda: None)
    result = CliRunner().invoke(
        cli,
        ["worker", "tests.cli.app:jobs", "--threads", "3"],
        env={"JOBWIRE_QUEUES": "cpu,io", "JOBWIRE_ASYNC_CONCURRENCY": "7"},
    )
    assert result.exit_code == 0, result.output
    assert seen["opts"].queues == ("cpu", "io")
    assert seen["opts"].concurrency == 7
    assert seen["opts"].threads == 3


def test_a_malformed_argument_exits_2_before_anything_runs() -> None:
    result = CliRunner().invoke(cli, ["submit", "add", "a=1", "oops"])
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.output


def test_a_bad_queue_exits_2() -> None:
    result = CliRunner().invoke(cli, ["worker", "tests.cli.app:jobs", "--queues", "bad queue"])
    assert result.exit_code == 2
    assert "queue name" in result.output
