"""The engine goes away for ten seconds and comes back: PostgreSQL, then Redis.

A server (uvicorn, no embedded workers) and a standalone worker run against a private
engine; a client submits jobs over HTTP before, during and after the outage. While the
engine is away every answer is a prompt 503 that says the store is unavailable, with a
Retry-After; before and after, every submit is a 202. Both processes live through it
(same pids, a few log lines, no tracebacks), every job answered 202 succeeds exactly
once, and pickup after the outage comes from wake-ups, not the backstop poll.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pytest

from jobwire.model import EventType, State
from jobwire.store import store_from_url
from tests.chaos.conftest import Chaos
from tests.chaos.harness import SERVER_STARTED, WORKER_STARTED, Proc, free_port, until
from tests.support.engines import private_postgres, private_redis

OUTAGE_SECONDS = 10.0
ANSWER_WITHIN = 5.0  # no request may hang longer than this, outage or not
PICKUP_WITHIN = 1.5  # after recovery, by wake-up; the backstop poll is POLL_SECONDS
POLL_SECONDS = 60
RECOVERY_WITHIN = 15.0  # engine back → the worker hears wake-ups again
ENV = {
    "JOBWIRE_EMBEDDED_WORKERS": "false",
    "JOBWIRE_POLL_SECONDS": str(POLL_SECONDS),
    # Short, so that a claim committed as the engine went down (its answer lost) is
    # handed back soon after it returns instead of holding the test.
    "JOBWIRE_LEASE_SECONDS": "5",
}
ROUTES = {"submit", "get", "list", "ready", "events"}
# What a process logs when it hears wake-ups again after an outage.
LISTENING_AGAIN = r"wake-ups \(.*\): the store is reachable again"


class Engine(Protocol):
    url: str

    def stop(self) -> None: ...

    def start(self) -> None: ...


@pytest.fixture(params=["postgresql", "redis"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    with private_postgres() if request.param == "postgresql" else private_redis() as server:
        yield server


@dataclass(frozen=True)
class Answer:
    route: str  # submit, get, list, ready
    sent: float  # time.monotonic() in this process
    took: float
    status: int
    retry_after: str | None
    body: Any

    @property
    def answered(self) -> float:
        return self.sent + self.took


@dataclass
class Client:
    """Submits a job every ``every`` seconds and now and then reads one back, lists,
    asks for readiness and reads a job's events, recording every answer with when it
    was sent."""

    base_url: str
    every: float = 0.05
    answers: list[Answer] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _call(self, http: httpx.Client, route: str, method: str, path: str, **kw: Any) -> Answer:
        sent = time.monotonic()
        try:
            response = http.request(method, path, **kw)
        except httpx.TransportError as exc:  # the server hung or went away: both wrong
            self.transport_errors.append(f"{route} {path}: {type(exc).__name__}: {exc}")
            raise
        try:
            body = response.json()
        except ValueError:
            body = response.text
        answer = Answer(
            route,
            sent,
            time.monotonic() - sent,
            response.status_code,
            response.headers.get("retry-after"),
            body,
        )
        self.answers.append(answer)
        return answer

    def submit_one(self, body: dict[str, Any]) -> str:
        with httpx.Client(base_url=self.base_url, timeout=ANSWER_WITHIN * 2) as http:
            answer = self._call(http, "submit", "POST", "/jobs", json=body)
        assert answer.status == 202, answer
        job_id: str = answer.body["id"]
        self.accepted.append(job_id)
        return job_id

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=ANSWER_WITHIN * 2) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                # Every fifth job runs long enough to be running when the engine goes:
                # its worker records the outcome once the engine is back.
                body = {"job": "work", "args": {"ms": 1500 if n % 5 == 0 else 5}}
                try:
                    answer = self._call(http, "submit", "POST", "/jobs", json=body)
                    if answer.status == 202:
                        self.accepted.append(answer.body["id"])
                    if n % 4 == 0 and self.accepted:
                        self._call(http, "get", "GET", f"/jobs/{self.accepted[-1]}")
                        self._call(http, "list", "GET", "/jobs", params={"limit": 5})
                        self._call(http, "ready", "GET", "/jobs/health/ready")
                        self._call(
                            http,
                            "events",
                            "GET",
                            f"/jobs/{self.accepted[-1]}/events",
                            headers={"Accept": "application/json"},
                        )
                except httpx.TransportError:
                    pass
                self.stop.wait(self.every)


@dataclass
class Follower:
    """Follows one job's SSE stream to its end, resuming with Last-Event-ID if the
    connection drops; records each event's id and type, and how many connections."""

    base_url: str
    job_id: str
    events: list[tuple[int, str]] = field(default_factory=list)
    connections: int = 0
    problems: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        timeout = httpx.Timeout(ANSWER_WITHIN, read=30.0)  # keep-alives come every 15 s
        with httpx.Client(base_url=self.base_url, timeout=timeout) as http:
            while not self.done.is_set():
                headers = {"Accept": "text/event-stream"}
                if self.events:
                    headers["Last-Event-ID"] = str(self.events[-1][0])
                try:
                    self._stream(http, headers)
                except httpx.TransportError as exc:
                    self.problems.append(f"{type(exc).__name__}: {exc}")
                    self.done.wait(0.5)

    def _stream(self, http: httpx.Client, headers: dict[str, str]) -> None:
        with http.stream("GET", f"/jobs/{self.job_id}/events", headers=headers) as response:
            self.connections += 1
            if response.status_code != 200:
                self.problems.append(f"answered {response.status_code}")
                self.done.wait(0.5)
                return
            seq, kind = 0, ""
            for line in response.iter_lines():
                if line.startswith("id:"):
                    seq = int(line[3:].strip())
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line == "" and kind:
                    self.events.append((seq, kind))
                    if kind in ("succeeded", "failed", "cancelled"):
                        self.done.set()
                        return
                    kind = ""


def ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/jobs/health/ready", timeout=ANSWER_WITHIN).status_code == 200
    except httpx.TransportError:
        return False


def pickup_latencies(base_url: str, n: int) -> list[float]:
    """Submit ``n`` jobs one at a time, each once the worker is idle again; return how
    long each waited between being stored and being started."""
    latencies = []
    with httpx.Client(base_url=base_url, timeout=ANSWER_WITHIN * 2) as http:
        for _ in range(n):
            submitted = http.post("/jobs", json={"job": "work", "args": {"ms": 1}})
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["id"]
            view = http.get(f"/jobs/{job_id}", params={"wait": ANSWER_WITHIN}).json()
            assert view["state"] == "succeeded", view
            started = view["started_at"] or view["finished_at"]
            latencies.append(_seconds(started) - _seconds(view["created_at"]))
    return latencies


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def outcomes(url: str, ids: list[str]) -> tuple[Counter[str], Counter[str]]:
    """Each job's state, and how many ``succeeded`` events each job's log holds."""
    store = store_from_url(url)
    await store.open()
    try:
        states: Counter[str] = Counter()
        successes: Counter[str] = Counter()
        for job_id in ids:
            job = await store.get(job_id)
            states[job.state.value if job else "missing"] += 1
            events = await store.events(job_id)
            successes[job_id] = sum(e.type is EventType.SUCCEEDED for e in events)
        return states, successes
    finally:
        await store.close()


async def unfinished(url: str, ids: list[str]) -> int:
    store = store_from_url(url)
    await store.open()
    try:
        jobs = [await store.get(job_id) for job_id in ids]
        return sum(1 for job in jobs if job is None or job.state in (State.QUEUED, State.RUNNING))
    finally:
        await store.close()


def outage_lines(proc: Proc) -> list[str]:
    return [line for line in proc.lines if "unavailable" in line or "Traceback" in line]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_server_and_worker_ride_out_a_ten_second_engine_outage(
    chaos: Chaos, engine: Engine
) -> None:
    env = {**ENV, "JOBWIRE_URL": engine.url}
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = chaos.procs.server(port, **env)
    worker = chaos.procs.worker(**env)
    server.wait_for(SERVER_STARTED)
    worker.wait_for(WORKER_STARTED)
    pids = (server.pid, worker.pid)
    before_latencies = pickup_latencies(base_url, 3)

    client = Client(base_url)
    follower: Follower | None = None
    thread = threading.Thread(target=client.run, name="client", daemon=True)
    thread.start()
    try:
        until(lambda: len(client.accepted) >= 20, 20, "20 jobs accepted before the outage")
        # Due in the middle of the outage: the idle worker's claim loop wakes for it then.
        client.submit_one({"job": "work", "args": {"ms": 5}, "delay": OUTAGE_SECONDS / 3})
        # Running through the whole outage, with a follower on its event stream.
        long_job = client.submit_one({"job": "sleeper", "args": {"seconds": OUTAGE_SECONDS + 3}})
        follower = Follower(base_url, long_job)
        following = threading.Thread(target=follower.run, name="follower", daemon=True)
        following.start()
        until(lambda: follower.events, 20, "the long job's first event on its stream")
        stopping = time.monotonic()
        engine.stop()
        down = time.monotonic()
        # The outage itself: its length is the point of the test, not a wait for an event.
        time.sleep(OUTAGE_SECONDS)
        starting = time.monotonic()
        engine.start()
        started = time.monotonic()
        until(lambda: ready(base_url), RECOVERY_WITHIN, "the server to be ready again")
        back = time.monotonic()
        worker.wait_for(LISTENING_AGAIN, timeout=RECOVERY_WITHIN)
        until(lambda: len(client.accepted) >= 20 + 20, 20, "20 more jobs accepted after it")
    finally:
        client.stop.set()
        thread.join(ANSWER_WITHIN * 3)
        if follower is not None and sys.exc_info()[0] is not None:
            follower.done.set()  # the test failed: stop following too
    after_latencies = pickup_latencies(base_url, 5)

    report = (
        f"outage {down - stopping:.2f} s to stop, {started - starting:.2f} s to start, "
        f"ready {back - started:.2f} s after; pickup before {before_latencies}, "
        f"after {after_latencies}\n{chaos.procs.logs()[-6000:]}"
    )
    # The client was never left hanging, nor answered with anything but 2xx or 503.
    assert not client.transport_errors, client.transport_errors[:5]
    slow = [a for a in client.answers if a.took > ANSWER_WITHIN]
    assert not slow, f"answers slower than {ANSWER_WITHIN} s: {slow[:5]}"
    odd = [a for a in client.answers if a.status not in (200, 202, 503)]
    assert not odd, f"unexpected answers: {odd[:5]}\n{server.output_tail(150)}"

    # Before and after the outage: every request succeeded.
    before = [a for a in client.answers if a.answered < stopping]
    after = [a for a in client.answers if a.sent > back]
    for phase, answers in (("before", before), ("after", after)):
        failed = [a for a in answers if a.status == 503]
        assert not failed, f"{phase} the outage: {failed[:5]}\n{report}"
        assert {a.route for a in answers} == ROUTES, phase

    # While the engine was away: a prompt 503 that says why, on every route.
    during = [a for a in client.answers if a.sent > down and a.answered < starting]
    assert {a.route for a in during} == ROUTES, report
    for answer in during:
        assert answer.status == 503, f"{answer}\n{report}"
        assert answer.retry_after is not None and int(answer.retry_after) >= 1, answer
        assert "store is unavailable" in answer.body["detail"], answer
    assert sum(a.route == "submit" for a in during) >= 20, "too few submits in the outage"

    # Every job answered 202 succeeds, exactly once.
    accepted = list(dict.fromkeys(client.accepted))
    assert len(accepted) == len(client.accepted)
    until(
        lambda: asyncio.run(unfinished(engine.url, accepted)) == 0,
        30,
        "every accepted job to finish",
        every=0.5,
    )
    states, successes = asyncio.run(outcomes(engine.url, accepted))
    assert states == Counter({"succeeded": len(accepted)}), report
    assert set(successes.values()) == {1}, {k: v for k, v in successes.items() if v != 1}

    # The follower of the job that ran through the outage saw it to its end, on the
    # connection it opened before the outage, every event once and in order.
    assert follower is not None
    assert follower.done.wait(20), f"{follower}\n{report}"
    following.join(5)
    assert [kind for _, kind in follower.events][-1] == "succeeded", follower
    assert [seq for seq, _ in follower.events] == list(range(1, len(follower.events) + 1))
    assert follower.connections == 1 and not follower.problems, follower

    # Pickup after recovery is as quick as before it: the worker's wake-ups are back
    # (the backstop poll is POLL_SECONDS away).
    assert max(after_latencies) < PICKUP_WITHIN, report

    # The same processes throughout, which said a few lines about it, not a stream.
    assert server.alive() and worker.alive(), report
    assert (server.pid, worker.pid) == pids
    assert sum("worker" in line and "started" in line for line in worker.lines) == 1
    # Its claim loop met the outage (woken for the delayed job) and came back.
    worker.wait_for(r"worker \S+: the store is reachable again", timeout=0)
    for proc in (server, worker):
        lines = outage_lines(proc)
        assert not any("Traceback" in line for line in lines), proc.output_tail(80)
        assert len(lines) <= 15, f"{proc.name} logged {len(lines)} lines:\n" + "\n".join(lines)
