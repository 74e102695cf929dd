"""Cron schedules declared in code: which ticks are due, in which time zone, and what
happens to ticks nobody fired in time (the misfire policy). Pure: no store, no clock.

Fire times come from `cronsim <https://pypi.org/project/cronsim/>`_, which follows
Debian's cron, DST included: a time that does not exist on a spring-forward day (02:30
in Europe/Paris) fires once, at the first minute after the jump (03:00); a fixed time
that happens twice on a fall-back day fires once, at its first occurrence; a schedule
with a wildcard hour (``*/20 * * * *``) fires in both of the repeated hours, since each
of those instants is a distinct tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from jobwire.errors import JobDefinitionError

Misfire = Literal["latest", "skip", "all"]
MISFIRE_POLICIES: tuple[str, ...] = get_args(Misfire)

# The most ticks one scheduler pass fires for one schedule (policy "all" after a long
# outage): the newest ones; older ones are dropped.
MAX_CATCH_UP = 100
DEFAULT_GRACE = 60.0
# A schedule's jobs are stored under this idempotency key, per fire time, in the
# namespace of the schedule's owner: every scheduler that fires the tick gets one job.
KEY_PREFIX = "schedule:"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A job to enqueue on every tick of a cron expression.

    ``grace``: how late a tick may be fired and still count as on time; a tick older
    than that when a scheduler first sees it was *missed* (every process was down or the
    schedule paused), and ``misfire`` decides: ``"latest"`` fires the newest missed
    tick once, only when no tick is on time; ``"skip"`` fires none of them; ``"all"``
    fires every one, the newest :data:`MAX_CATCH_UP` at most.
    """

    name: str
    job: str
    cron: str
    args: dict[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    misfire: Misfire = "latest"
    grace: float = DEFAULT_GRACE
    queue: str | None = None
    priority: int | None = None
    owner: str = "anonymous"

    def __post_init__(self) -> None:
        where = f"schedule {self.name!r}"
        if not self.name or len(self.name) > 200 or "/" in self.name:
            raise JobDefinitionError(f"{where}: a name of 1-200 characters without '/'")
        if self.misfire not in MISFIRE_POLICIES:
            raise JobDefinitionError(
                f"{where}: misfire must be one of {', '.join(MISFIRE_POLICIES)}, "
                f"got {self.misfire!r}"
            )
        if not self.grace > 0:
            raise JobDefinitionError(f"{where}: grace must be > 0 seconds, got {self.grace}")
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise JobDefinitionError(f"{where}: unknown time zone {self.timezone!r}") from None
        try:
            CronSim(self.cron, datetime.now(zone))
        except CronSimError as exc:
            raise JobDefinitionError(f"{where}: invalid cron {self.cron!r}: {exc}") from None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def key(self, fire_at: float) -> str:
        """The idempotency key of this schedule's job for the tick at ``fire_at``."""
        return f"{KEY_PREFIX}{self.name}:{int(fire_at)}"

    def next_after(self, at: float) -> float | None:
        """The first tick strictly after ``at`` (epoch seconds), None when there is none
        within cronsim's horizon (50 years)."""
        start = datetime.fromtimestamp(at, self.zone)
        for tick in CronSim(self.cron, start):
            if tick.timestamp() > at:
                return tick.timestamp()
        return None

    def ticks_to_fire(self, since: float, now: float) -> list[float]:
        """The ticks in ``(since, now]`` to fire now, oldest first, by the misfire policy.

        Walks back from ``now`` and stops as soon as the policy has what it needs, so a
        per-second schedule after a day's outage costs at most ``grace`` or
        :data:`MAX_CATCH_UP` steps, not a day's worth.
        """
        on_time: list[float] = []
        missed: list[float] = []
        # A reverse walk starts strictly before its start: one second on, so that a tick
        # at ``now`` itself is seen (ticks fall on whole seconds).
        start = datetime.fromtimestamp(now + 1, self.zone)
        for tick in CronSim(self.cron, start, reverse=True):
            at = tick.timestamp()
            if at > now:
                continue
            if at <= since or len(on_time) + len(missed) >= MAX_CATCH_UP:
                break
            if now - at <= self.grace:
                on_time.append(at)
                continue
            if self.misfire == "skip":
                break
            missed.append(at)
            if self.misfire == "latest":
                break
        if self.misfire == "latest" and on_time:
            missed = []
        return sorted(on_time + missed)


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A declared schedule as it stands: what every listing (HTTP, CLI, dashboard) shows."""

    schedule: Schedule
    paused: bool
    next_fire_at: float | None  # None while paused
    last_fire_at: float | None
    last_job_id: str | None
    last_outcome: str | None  # the last tick's job's state; None before the first tick

    def as_dict(self) -> dict[str, Any]:
        s = self.schedule
        return {
            "name": s.name,
            "job": s.job,
            "cron": s.cron,
            "timezone": s.timezone,
            "args": s.args,
            "misfire": s.misfire,
            "queue": s.queue,
            "paused": self.paused,
            "next_fire_at": iso(self.next_fire_at),
            "last_fire_at": iso(self.last_fire_at),
            "last_job_id": self.last_job_id,
            "last_outcome": self.last_outcome,
        }


def iso(at: float | None) -> str | None:
    """Epoch seconds as ISO 8601 in UTC, as every view shows times."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
