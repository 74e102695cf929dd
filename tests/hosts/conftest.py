"""A small cluster per test: hosts in network namespaces of their own, and a private
store engine on the bridge between them, all removed when the test ends (pass or fail).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.chaos.harness import Proc
from tests.hosts.app import HOST_ENV, RELEASE_ENV, SIDE_EFFECTS_ENV
from tests.hosts.engines import (
    Engine,
    PrivatePostgres,
    PrivateRedis,
    why_no_postgres,
    why_no_redis,
)
from tests.hosts.network import Host, Network, unavailable, why_no_namespaces

ENGINES = {"postgres": why_no_postgres, "redis": why_no_redis}
JOBWIRE_CLI = str(Path(sys.executable).with_name("jobwire"))


@dataclass
class Cluster:
    network: Network
    engine: Engine
    effects: Path
    released: Path  # where release() leaves its files
    settings: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.engine.url

    def worker(self, host: Host) -> Proc:
        """``jobwire worker tests.hosts.app:jobs`` on ``host``, in its namespace."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_")}
        env.update(self.settings)
        env.update(
            {
                "JOBWIRE_URL": self.url,
                HOST_ENV: host.name,
                SIDE_EFFECTS_ENV: str(self.effects),
                RELEASE_ENV: str(self.released),
                "PYTHONUNBUFFERED": "1",
            }
        )
        argv = host.argv(JOBWIRE_CLI, "worker", "tests.hosts.app:jobs")
        proc = Proc(f"worker on {host.name}", argv, env)
        self.procs.append(proc)
        return proc

    def release(self, host: Host) -> None:
        """Let the job that runs on ``host`` finish."""
        (self.released / host.name).touch()

    def ends(self) -> list[tuple[str, str, int]]:
        """(host, job id, attempt) of every attempt whose code ran to its end."""
        if not self.effects.exists():
            return []
        rows = [line.split() for line in self.effects.read_text().splitlines()]
        return [(host, job_id, int(attempt)) for _, host, job_id, attempt in rows]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} pid={p.pid}\n{p.output}" for p in self.procs)


@pytest.fixture(params=sorted(ENGINES))
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def network() -> Iterator[Network]:
    """A bridge with hosts ``a`` and ``b`` plugged in."""
    reason = why_no_namespaces()
    if reason is not None:
        unavailable(reason)
    try:
        net = Network()
    except RuntimeError as exc:
        unavailable(f"cannot look at this machine's addresses: {exc}")
    try:
        try:
            net.__enter__()
            for name in ("a", "b"):
                net.add_host(name)
        except RuntimeError as exc:  # no CAP_NET_ADMIN, no netns support…
            unavailable(f"cannot make network namespaces: {exc}")
        yield net
    finally:
        net.close()


@pytest.fixture
def cluster(engine_name: str, network: Network, tmp_path: Path) -> Iterator[Cluster]:
    reason = ENGINES[engine_name]()
    if reason is not None:
        unavailable(reason)
    engine: Engine
    if engine_name == "postgres":
        engine = PrivatePostgres(network.gateway, str(network.subnet))
    else:
        engine = PrivateRedis(network.gateway)
    (tmp_path / "released").mkdir()
    cluster = Cluster(
        network, engine, tmp_path / "side-effects.log", tmp_path / "released", settings={}
    )
    try:
        yield cluster
    finally:
        for proc in cluster.procs:
            proc.cleanup()
        # Shown by pytest only when the test failed.
        print(cluster.logs())
        print(f"--- {engine_name} log\n{engine.log()[-5000:]}")
        engine.stop()
