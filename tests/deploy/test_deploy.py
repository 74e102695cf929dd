"""The deployment files, checked statically (no container engine runs here): hadolint on
the Dockerfile, kubernetes-validate on the manifests, and their paths, ports and grace
periods against what the code actually serves and does."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from jobwire.model import State
from jobwire.settings import Settings
from jobwire.store import store_from_url

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))
BIN = Path(sys.executable).parent
DEFAULTS = Settings()


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed (python3 dev.py installs the dev group)"
    return str(path)


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resource(kind: str, name: str) -> dict[str, Any]:
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name} under deploy/k8s")


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only


def env_of(spec: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in spec.get("env", [])}


@pytest.fixture
async def answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``await answers(path)``: the status the app the image runs (deploy/service.py)
    gives a GET of ``path``, over a fresh store."""
    monkeypatch.setenv("JOBWIRE_URL", f"sqlite:///{tmp_path / 'jobs.db'}")
    monkeypatch.setenv("JOBWIRE_EMBEDDED_WORKERS", "false")
    monkeypatch.delitem(sys.modules, "examples.app", raising=False)
    spec = importlib.util.spec_from_file_location("deploy_service", DEPLOY / "service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    transport = httpx.ASGITransport(app=module.app)
    async with module.jobs, httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        async def get(path: str) -> int:
            return (await client.get(path)).status_code

        yield get
    monkeypatch.delitem(sys.modules, "examples.app", raising=False)


def drain_budget(shutdown_grace: float, cancel_grace: float) -> float:
    """The longest a worker's drain takes (Worker.drain): the grace for running jobs,
    then up to max(5 s, cancel grace) for the released ones to stop."""
    return shutdown_grace + max(5.0, cancel_grace)


def seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)s", text)
    assert match, f"expected a duration like 45s, got {text!r}"
    return float(match[1])


# -- the tools ---------------------------------------------------------------------------


def test_hadolint_passes_the_dockerfile() -> None:
    done = subprocess.run(
        [tool("hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_fail_a_bad_dockerfile() -> None:
    bad = "FROM python:latest\nRUN cd /app && pip install requests\n"
    done = subprocess.run([tool("hadolint"), "-"], input=bad, capture_output=True, text=True)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # the latest tag


def test_kubernetes_validate_passes_every_manifest_offline() -> None:
    assert {p.name for p in MANIFESTS} >= {"api.yaml", "worker.yaml", "hpa.yaml"}
    done = subprocess.run(
        [tool("kubernetes-validate"), "--strict", *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_validate_does_fail_a_wrong_manifest(tmp_path: Path) -> None:
    wrong = (DEPLOY / "k8s" / "worker.yaml").read_text()
    wrong = wrong.replace("terminationGracePeriodSeconds: 45", "terminationGracePeriod: 45")
    (tmp_path / "worker.yaml").write_text(wrong)
    done = subprocess.run(
        [tool("kubernetes-validate"), "--strict", str(tmp_path / "worker.yaml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "terminationGracePeriod" in done.stdout + done.stderr


# -- the image ---------------------------------------------------------------------------


def test_the_image_is_multi_stage_non_root_and_serves_the_api_on_its_port() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    assert sum(line.startswith("FROM ") for line in lines) >= 2
    [user] = [line for line in lines if line.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in ("root", "0")
    [expose] = [line for line in lines if line.startswith("EXPOSE ")]
    [cmd] = [line for line in lines if line.startswith("CMD ")]
    assert '"service:app"' in cmd
    assert f'"--port", "{expose.split()[1]}"' in cmd
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert f"!{source.rstrip('/')}" in {i.rstrip("/") for i in ignored}, source


# -- the manifests against the code ------------------------------------------------------


async def test_api_probes_name_routes_the_app_serves_on_the_container_port(answers: Any) -> None:
    api = resource("Deployment", "jobwire-api")
    spec = container(api)
    [port] = spec["ports"]
    command = spec["command"]
    assert command[command.index("--port") + 1] == str(port["containerPort"])
    live, ready = spec["livenessProbe"]["httpGet"], spec["readinessProbe"]["httpGet"]
    assert live["path"].endswith("/health/live") and await answers(live["path"]) == 200
    assert ready["path"].endswith("/health/ready") and await answers(ready["path"]) == 200
    assert await answers(ready["path"] + "-not") == 404  # a path it does not serve
    assert live["port"] == ready["port"] == port["name"]
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert await answers(annotations["prometheus.io/path"]) == 200
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    service = resource("Service", "jobwire-api")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]


def test_worker_grace_period_outlasts_its_prestop_and_drain() -> None:
    worker = resource("Deployment", "jobwire-worker")
    spec = container(worker)
    env = env_of(spec)
    shutdown = float(env["JOBWIRE_SHUTDOWN_GRACE_SECONDS"])
    cancel = float(env["JOBWIRE_CANCEL_GRACE_SECONDS"])
    # The manifest spells out the code's defaults: a change of either shows up here.
    assert (shutdown, cancel) == (DEFAULTS.shutdown_grace_seconds, DEFAULTS.cancel_grace_seconds)
    pre_stop = spec["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= float(pre_stop[1]) + drain_budget(shutdown, cancel) + 5  # a margin
    assert spec["command"][:3] == ["jobwire", "worker", "service:jobs"]


def test_worker_liveness_runs_jobwire_health_no_faster_than_heartbeats() -> None:
    spec = container(resource("Deployment", "jobwire-worker"))
    probe = spec["livenessProbe"]
    assert probe["exec"]["command"] == ["jobwire", "health"]
    # It fails only after a lease without heartbeat: probing more often adds nothing.
    assert probe["periodSeconds"] >= DEFAULTS.heartbeat_seconds
    assert probe["timeoutSeconds"] >= 5  # a cold interpreter opening the store


def test_the_hpa_scales_the_worker_deployment_on_a_metric_jobwire_exports() -> None:
    hpa = resource("HorizontalPodAutoscaler", "jobwire-worker")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "jobwire-worker")
    resource("Deployment", "jobwire-worker")
    [metric] = hpa["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "jobwire_jobs"
    labels = metric["external"]["metric"]["selector"]["matchLabels"]
    assert labels["state"] == State.QUEUED.value
    from jobwire import metrics

    assert '"jobwire_jobs",' in Path(metrics.__file__).read_text()


# -- the compose files -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["compose.postgres.yaml", "compose.redis.yaml"])
async def test_compose_runs_the_api_and_draining_workers_on_its_store(
    name: str, answers: Any
) -> None:
    compose = yaml.safe_load((DEPLOY / name).read_text())
    services = compose["services"]
    api, worker = services["api"], services["worker"]
    url = api["environment"]["JOBWIRE_URL"]
    assert url == worker["environment"]["JOBWIRE_URL"]
    engine = "postgres" if "postgres" in name else "redis"
    assert engine in services and url.split("://")[0].startswith(engine)
    store_from_url(url, DEFAULTS)  # a URL jobwire accepts
    assert api["environment"]["JOBWIRE_EMBEDDED_WORKERS"] == "false"
    assert api["ports"] == ["127.0.0.1:8000:8000"]
    ready = re.search(r"http://127\.0\.0\.1:8000(/\S+?)'", api["healthcheck"]["test"][-1])
    assert ready is not None and ready[1].endswith("/health/ready")
    assert await answers(ready[1]) == 200
    assert worker["command"][:3] == ["jobwire", "worker", "service:jobs"]
    assert worker["healthcheck"]["test"] == ["CMD", "jobwire", "health"]
    budget = drain_budget(DEFAULTS.shutdown_grace_seconds, DEFAULTS.cancel_grace_seconds)
    assert seconds(worker["stop_grace_period"]) >= budget + 5
