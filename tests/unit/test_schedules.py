"""Schedule declarations and their ticks, without a store."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from jobwire.errors import JobDefinitionError
from jobwire.schedules import MAX_CATCH_UP, Schedule

PARIS = ZoneInfo("Europe/Paris")


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=PARIS).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "61 * * * *"}, "invalid cron '61 * * * *'"),
        ({"cron": "every day"}, "invalid cron"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"misfire": "sometimes"}, "misfire must be one of latest, skip, all"),
        ({"grace": 0}, "grace must be > 0"),
        ({"name": "a/b"}, "without '/'"),
    ],
)
def test_a_bad_declaration_is_refused_naming_what_is_wrong(
    fields: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"name": "s", "job": "j", "cron": "* * * * *", **fields}
    with pytest.raises(JobDefinitionError, match=r"schedule '.*'") as caught:
        Schedule(**values)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_a_0230_daily_tick_on_dst_days_fires_once_each_day() -> None:
    nightly = Schedule("n", "j", "30 2 * * *", timezone="Europe/Paris", misfire="all")
    spring = nightly.ticks_to_fire(at(2026, 3, 28, 12), at(2026, 3, 30, 12))
    assert spring == [at(2026, 3, 29, 3, 0), at(2026, 3, 30, 2, 30)]
    autumn = nightly.ticks_to_fire(at(2026, 10, 24, 12), at(2026, 10, 26, 12))
    assert autumn == [at(2026, 10, 25, 2, 30), at(2026, 10, 26, 2, 30)]
    assert autumn[1] - autumn[0] == 25 * 3600  # the first 02:30 of the long day


def test_a_wildcard_hour_fires_in_both_repeated_hours_of_a_fall_back_night() -> None:
    every_20 = Schedule("n", "j", "*/20 2 * * *", timezone="Europe/Paris", misfire="all")
    ticks = every_20.ticks_to_fire(at(2026, 10, 25, 0), at(2026, 10, 25, 5))
    assert len(ticks) == 6 and len(set(ticks)) == 6


def test_ticks_are_those_after_since_up_to_and_including_now() -> None:
    second = Schedule("s", "j", "* * * * * *", misfire="all")
    assert second.ticks_to_fire(100.0, 103.0) == [101.0, 102.0, 103.0]
    assert second.ticks_to_fire(100.5, 103.9) == [101.0, 102.0, 103.0]
    assert second.next_after(103.0) == 104.0


def test_all_catches_up_at_most_the_newest_hundred() -> None:
    second = Schedule("s", "j", "* * * * * *", misfire="all")
    ticks = second.ticks_to_fire(0.0, 100_000.0)
    assert len(ticks) == MAX_CATCH_UP and ticks[-1] == 100_000.0


def test_the_key_names_the_schedule_and_the_tick() -> None:
    assert Schedule("nightly", "j", "* * * * *").key(1_700_000_000.0) == (
        "schedule:nightly:1700000000"
    )
