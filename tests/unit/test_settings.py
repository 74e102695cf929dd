"""Settings: the only reader of ``JOBWIRE_*``, validated once, errors naming the variable."""

from __future__ import annotations

import pytest

from jobwire import ConfigError, Jobwire, Settings


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.url == "sqlite:///./jobwire.db"
    assert settings.embedded_workers is True
    assert settings.queues == ("default",)
    assert settings.process_concurrency >= 1


def test_each_kind_of_value_is_parsed_from_its_variable() -> None:
    settings = Settings.from_env(
        {
            "JOBWIRE_URL": "sqlite:////tmp/x.db",
            "JOBWIRE_EMBEDDED_WORKERS": "off",
            "JOBWIRE_QUEUES": " default, cpu ,,io ",
            "JOBWIRE_ASYNC_CONCURRENCY": " 7 ",
            "JOBWIRE_PROCESS_CONCURRENCY": "3",
            "JOBWIRE_LEASE_SECONDS": "2.5",
            "JOBWIRE_MAX_BODY_BYTES": "4096",
        }
    )
    assert settings.url == "sqlite:////tmp/x.db"
    assert settings.embedded_workers is False
    assert settings.queues == ("default", "cpu", "io")
    assert settings.async_concurrency == 7
    assert settings.process_concurrency == 3
    assert settings.lease_seconds == 2.5
    assert settings.max_body_bytes == 4096


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_booleans_take_the_usual_spellings(raw: str, expected: bool) -> None:
    assert Settings.from_env({"JOBWIRE_EMBEDDED_WORKERS": raw}).embedded_workers is expected


def test_explicit_overrides_beat_the_environment() -> None:
    settings = Settings.from_env({"JOBWIRE_POLL_SECONDS": "9"}, poll_seconds=0.5)
    assert settings.poll_seconds == 0.5


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"OTHER_URL": "x", "JOBWIRE": "y"}) == Settings.from_env({})


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        (
            "JOBWIRE_ASYNC_CONCURRENCY",
            "many",
            "JOBWIRE_ASYNC_CONCURRENCY: expected an integer, got 'many'",
        ),
        (
            "JOBWIRE_PROCESS_CONCURRENCY",
            "2.5",
            "JOBWIRE_PROCESS_CONCURRENCY: expected an integer, got '2.5'",
        ),
        ("JOBWIRE_LEASE_SECONDS", "soon", "JOBWIRE_LEASE_SECONDS: expected a number, got 'soon'"),
        (
            "JOBWIRE_EMBEDDED_WORKERS",
            "maybe",
            "JOBWIRE_EMBEDDED_WORKERS: expected true or false, got 'maybe'",
        ),
        (
            "JOBWIRE_LEASE_SECONDS",
            "0",
            "JOBWIRE_LEASE_SECONDS: expected a positive number, got 0.0",
        ),
        (
            "JOBWIRE_LEASE_SECONDS",
            "nan",
            "JOBWIRE_LEASE_SECONDS: expected a positive number, got nan",
        ),
        (
            "JOBWIRE_THREAD_CONCURRENCY",
            "-1",
            "JOBWIRE_THREAD_CONCURRENCY: expected a positive number, got -1",
        ),
        (
            "JOBWIRE_CANCEL_GRACE_SECONDS",
            "-0.5",
            "JOBWIRE_CANCEL_GRACE_SECONDS: expected a number >= 0, got -0.5",
        ),
        ("JOBWIRE_QUEUES", " , ", "JOBWIRE_QUEUES: expected comma-separated names, got ()"),
        (
            "JOBWIRE_SQLITE_SYNCHRONOUS",
            "OFF",
            "JOBWIRE_SQLITE_SYNCHRONOUS: expected NORMAL, FULL or EXTRA, got 'OFF'",
        ),
        ("JOBWIRE_DEFAULT_PAGE_SIZE", "500", "JOBWIRE_DEFAULT_PAGE_SIZE: expected 1..200, got 500"),
    ],
)
def test_an_invalid_value_is_refused_naming_the_variable(
    variable: str, raw: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: raw})
    assert str(caught.value) == message


def test_jobwire_reads_its_settings_from_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOBWIRE_URL", "memory://")
    monkeypatch.setenv("JOBWIRE_MAX_WAIT_SECONDS", "12")
    jobs = Jobwire()
    assert jobs.settings.url == "memory://"
    assert jobs.settings.max_wait_seconds == 12.0


def test_jobwire_refuses_a_bad_environment_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBWIRE_POLL_SECONDS", "often")
    with pytest.raises(ConfigError, match="JOBWIRE_POLL_SECONDS: expected a number, got 'often'"):
        Jobwire()


def test_using_gives_another_store_and_settings_with_the_same_jobs() -> None:
    jobs = Jobwire("memory://", poll_seconds=3.0)

    @jobs.job
    async def ping() -> str:
        return "pong"

    other = jobs.using("sqlite:////tmp/elsewhere.db", lease_seconds=4.0)
    assert other.settings.url == "sqlite:////tmp/elsewhere.db"
    assert other.settings.lease_seconds == 4.0
    assert other.settings.poll_seconds == 3.0
    assert other.registry == {"ping": ping}
    assert jobs.settings.url == "memory://"
    with pytest.raises(ConfigError, match="JOBWIRE_LEASE_SECONDS"):
        jobs.using(lease_seconds=-1)
