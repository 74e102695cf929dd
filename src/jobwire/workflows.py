"""Workflows: jobs that wait for others.

A workflow is a list of steps, each a job with its arguments and the steps it waits for
(``after``, always earlier in the list, so a workflow has no cycles). It is stored whole,
in one write, when it is submitted; the steps become jobs only once every step they wait
for has succeeded. A step may receive their results in one of its arguments
(``receive``): the one result when it waits for one step, else a list in ``after``
order (``gather`` asks for a list even of one result, as after a group of one).

From Python::

    from jobwire import chain, group

    flow = chain(gather.s(day="2026-01-31"), group(render.s(fmt="pdf"), render.s(fmt="html")),
                 deliver.s())

``crunch.s(**args)`` is a step that receives the previous result in its ``previous``
argument (``.into("name")`` picks another; ``crunch.si(**args)`` receives nothing);
``chain`` runs its items one after another, ``group`` side by side, and a step after a
group (a fan-in) receives the group's results as a list, in the group's order.

This module is pure: it compiles and checks the graph and reads where it stands from
its steps' jobs. :mod:`jobwire.services.workflows` moves it on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic_core import to_jsonable_python

from jobwire.errors import InvalidWorkflow
from jobwire.model import Job, State

if TYPE_CHECKING:
    from jobwire.jobs import JobSpec

MAX_STEPS = 10_000
NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
DEFAULT_RECEIVE = "previous"
DEPENDENCY_FAILED = "dependency failed"
WORKFLOW_CANCELLED = "workflow cancelled"
WORKFLOW_FAILED = "workflow failed"


def step_key(workflow_id: str, step: str) -> str:
    """The idempotency key of a step's job: one job per step, however many race."""
    return f"workflow:{workflow_id}:{step}"


@dataclass(frozen=True, slots=True)
class Step:
    """One step as stored: a job, its arguments, and what it waits for."""

    name: str
    job: str
    args: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    receive: str | None = None  # the argument that gets the results of ``after``
    gather: bool = False  # a list even of one result

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "job": self.job,
            "args": self.args,
            "after": list(self.after),
            "receive": self.receive,
            "gather": self.gather,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        return cls(
            name=data["name"],
            job=data["job"],
            args=dict(data.get("args") or {}),
            after=tuple(data.get("after") or ()),
            receive=data.get("receive"),
            gather=bool(data.get("gather", False)),
        )

    def arguments(self, results: Sequence[Any]) -> dict[str, Any]:
        """Its arguments once the steps it waits for gave ``results`` (in ``after`` order)."""
        if self.receive is None:
            return dict(self.args)
        passed = list(results) if self.gather or len(results) != 1 else results[0]
        return {**self.args, self.receive: passed}


# -- the Python API ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    """A job with its arguments, to become a step (``crunch.s(n=1)``)."""

    job: str
    args: dict[str, Any] = field(default_factory=dict)
    receive: str | None = DEFAULT_RECEIVE
    name: str | None = None

    def into(self, argument: str | None) -> Signature:
        """Receive the previous results in this argument (None: not at all)."""
        return replace(self, receive=argument)

    def named(self, name: str) -> Signature:
        """Name the step (the default is its position, "0", "1", ...)."""
        return replace(self, name=name)


@dataclass(frozen=True, slots=True)
class Chain:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Group:
    items: tuple[Node, ...]


Node = Signature | Chain | Group


def chain(*items: Node) -> Chain:
    """Run ``items`` one after another, each receiving what the one before gave."""
    if not items:
        raise ValueError("chain() needs at least one step")
    return Chain(tuple(items))


def group(*items: Node) -> Group:
    """Run ``items`` side by side; what follows receives their results as a list."""
    if not items:
        raise ValueError("group() needs at least one step")
    return Group(tuple(items))


def steps_of(node: Node) -> list[Step]:
    """The steps of a chain, group or signature, in an order where each comes after
    every step it waits for."""
    steps: list[Step] = []
    _place(node, (), False, steps)
    return steps


def _place(
    node: Node, after: tuple[str, ...], gather: bool, out: list[Step]
) -> tuple[tuple[str, ...], bool]:
    """Add ``node``'s steps, its first ones waiting for ``after``; answers its last steps
    and whether they end a group (so a step after them gathers a list)."""
    if isinstance(node, Signature):
        name = node.name if node.name is not None else str(len(out))
        receive = node.receive if after else None
        out.append(Step(name, node.job, dict(node.args), after, receive, gather and bool(receive)))
        return (name,), False
    if isinstance(node, Chain):
        for item in node.items:
            after, gather = _place(item, after, gather, out)
        return after, gather
    ends: list[str] = []
    for item in node.items:
        last, _ = _place(item, after, gather, out)
        ends.extend(last)
    return tuple(ends), True


# -- checking at submit -----------------------------------------------------------------


def check_steps(steps: Sequence[Step], registry: Mapping[str, JobSpec[Any, Any]]) -> list[Step]:
    """The steps with their arguments validated and dumped as JSON; raises
    InvalidWorkflow naming every step and field that is wrong."""
    errors: list[dict[str, Any]] = []
    checked: list[Step] = []
    seen: set[str] = set()

    def refuse(loc: tuple[str | int, ...], msg: str, kind: str, value: Any) -> None:
        errors.append({"type": kind, "loc": loc, "msg": msg, "input": value})

    if not steps:
        refuse(("steps",), "a workflow needs at least one step", "too_short", [])
    if len(steps) > MAX_STEPS:
        refuse(("steps",), f"at most {MAX_STEPS} steps", "too_long", None)
    for index, step in enumerate(steps):
        at: tuple[str | int, ...] = ("steps", index)
        if not NAME.match(step.name):
            refuse((*at, "name"), "1 to 100 letters, digits or _.:-", "step_name", step.name)
        elif step.name in seen:
            refuse((*at, "name"), f"another step is named {step.name!r}", "step_name", step.name)
        for position, before in enumerate(step.after):
            if before not in seen:
                refuse(
                    (*at, "after", position),
                    f"no earlier step is named {before!r} (a step waits for earlier ones only)",
                    "unknown_step",
                    before,
                )
        seen.add(step.name)
        spec = registry.get(step.job)
        if spec is None:
            known = ", ".join(sorted(registry)) or "(none)"
            refuse(
                (*at, "job"),
                f"unknown job {step.job!r}; registered jobs: {known}",
                "unknown_job",
                step.job,
            )
            continue
        fields = spec.args_model.model_fields
        if step.receive is not None and step.receive not in fields:
            refuse(
                (*at, "receive"),
                f"job {step.job!r} has no argument {step.receive!r} to receive results in",
                "unknown_argument",
                step.receive,
            )
            continue
        if step.receive is not None and step.receive in step.args:
            refuse(
                (*at, "args", step.receive),
                "given, but it receives the previous results",
                "receive_conflict",
                step.args[step.receive],
            )
            continue
        if step.receive is not None and not step.after:
            refuse(
                (*at, "receive"),
                "the step waits for nothing to receive",
                "receive_unused",
                step.receive,
            )
            continue
        try:
            dumped = spec.dump_arguments(step.args)
        except pydantic.ValidationError as exc:
            wrong = [
                e
                for e in exc.errors(include_url=False, include_context=False)
                # The received argument is filled in when the step runs.
                if not (e["type"] == "missing" and tuple(e["loc"]) == (step.receive,))
            ]
            for e in wrong:
                errors.append({**e, "loc": (*at, "args", *e["loc"])})
            if wrong:
                continue
            dumped = to_jsonable_python(step.args)
        checked.append(replace(step, args=dumped))
    if errors:
        raise InvalidWorkflow(errors)
    return checked


# -- where a workflow stands ------------------------------------------------------------

WAITING = "waiting"  # some step it waits for has not ended yet
READY = "ready"  # every step it waits for succeeded: its job is to be enqueued


@dataclass(frozen=True, slots=True)
class StepStatus:
    step: Step
    job: Job | None  # None until it is enqueued (and for good, when it never will be)
    state: str  # a job state, or waiting / ready
    reason: str | None = None  # why a step that never ran is cancelled

    @property
    def ended(self) -> bool:
        return self.state in (State.SUCCEEDED, State.FAILED, State.CANCELLED)


def statuses(
    steps: Sequence[Step], jobs: Mapping[str, Job | None], workflow_state: str
) -> list[StepStatus]:
    """Each step's state: its job's when it has one; else cancelled with the workflow
    (``workflow cancelled``), cancelled (``dependency failed``) when a step it waits for
    failed or was cancelled, cancelled when the workflow ended failed, ready when every
    step it waits for succeeded, else waiting."""
    found: dict[str, StepStatus] = {}
    for step in steps:
        job = jobs.get(step.name)
        if job is not None:
            status = StepStatus(step, job, job.state.value)
        else:
            before = [found[name] for name in step.after]
            if workflow_state == "cancelled":
                status = StepStatus(step, None, State.CANCELLED.value, WORKFLOW_CANCELLED)
            elif any(s.state in (State.FAILED, State.CANCELLED) for s in before):
                status = StepStatus(step, None, State.CANCELLED.value, DEPENDENCY_FAILED)
            elif workflow_state != "running":
                status = StepStatus(step, None, State.CANCELLED.value, WORKFLOW_FAILED)
            elif all(s.state == State.SUCCEEDED for s in before):
                status = StepStatus(step, None, READY)
            else:
                status = StepStatus(step, None, WAITING)
        found[step.name] = status
    return [found[step.name] for step in steps]


def outcome(found: Sequence[StepStatus]) -> str | None:
    """``succeeded`` when every step did, ``failed`` once every step has ended and one
    did not succeed, None while some step has not ended."""
    if not all(s.ended for s in found):
        return None
    return "succeeded" if all(s.state == State.SUCCEEDED for s in found) else "failed"


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    """A workflow and where each of its steps stands (``jobs.workflow(id)``)."""

    id: str
    owner: str
    state: str  # running, succeeded, failed or cancelled
    created_at: float
    updated_at: float
    steps: list[StepStatus]

    def step(self, name: str) -> StepStatus:
        for status in self.steps:
            if status.step.name == name:
                return status
        raise KeyError(name)

    def result(self, name: str) -> Any:
        """The result of the step of that name; None until it has succeeded."""
        job = self.step(name).job
        return None if job is None or job.state is not State.SUCCEEDED else job.result

    @property
    def ended(self) -> bool:
        return self.state != "running"
