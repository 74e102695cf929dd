"""The deployment files, checked statically (no container engine runs here): hadolint on
the Dockerfile, kubernetes-validate on the manifests, and their paths, ports and grace
periods against what the code actually serves and does."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from jobwire.model import State
from jobwire.settings import Settings
from jobwire.store import store_from_url
from tests.cli.conftest import Proc, subprocess_env

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


# -- names that must agree across files --------------------------------------------------

IMAGE = "jobwire:" + str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
README = (ROOT / "README.md").read_text()
COMPOSE_FILES = ["compose.postgres.yaml", "compose.redis.yaml"]


def every_resource() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in documents(path)]


def pod_containers() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container of every Deployment and StatefulSet."""
    return [
        (doc, spec)
        for doc in every_resource()
        if doc["kind"] in ("Deployment", "StatefulSet")
        for spec in doc["spec"]["template"]["spec"]["containers"]
    ]


def secret_data(name: str) -> dict[str, str]:
    return dict(resource("Secret", name)["stringData"])


def test_one_image_name_in_the_manifests_the_compose_files_the_dockerfile_and_readme() -> None:
    jobwire_images = {
        spec["image"] for doc, spec in pod_containers() if doc["metadata"]["name"] != "postgres"
    }
    assert jobwire_images == {IMAGE}
    for name in COMPOSE_FILES:
        services = yaml.safe_load((DEPLOY / name).read_text())["services"]
        assert services["api"]["image"] == services["worker"]["image"] == IMAGE, name
        assert services["api"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert f"docker build -f deploy/Dockerfile -t {IMAGE} ." in (DEPLOY / "Dockerfile").read_text()
    built = re.findall(r"docker build -f deploy/Dockerfile -t (\S+) \.", README)
    assert built and set(built) == {IMAGE}
    assert f"kind load docker-image {IMAGE}" in README
    assert f"minikube image load {IMAGE}" in README
    assert f"FROM {IMAGE}" in README  # putting one's own app into the image
    for _, spec in pod_containers():
        if spec["image"] == IMAGE:  # loaded into the cluster, in no registry
            assert spec["imagePullPolicy"] == "IfNotPresent"


def test_every_secret_reference_names_a_secret_and_key_the_manifests_define() -> None:
    refs = [
        env["valueFrom"]["secretKeyRef"]
        for _, spec in pod_containers()
        for env in spec.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    ]
    assert {(r["name"], r["key"]) for r in refs} >= {("jobwire", "url")}
    for ref in refs:
        assert ref["key"] in secret_data(ref["name"]), ref


def test_the_store_url_reaches_the_postgres_the_manifests_deploy() -> None:
    url = urlsplit(secret_data("jobwire")["url"])
    assert url.scheme == "postgresql"
    store_from_url(url.geturl(), DEFAULTS)
    service = resource("Service", url.hostname or "")
    [port] = service["spec"]["ports"]
    assert port["port"] == url.port
    database = resource("StatefulSet", url.hostname or "")
    assert database["spec"]["serviceName"] == service["metadata"]["name"]
    labels = database["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    [spec] = database["spec"]["template"]["spec"]["containers"]
    assert port["targetPort"] in {p["name"] for p in spec["ports"]}
    # The credentials the server is created with are the ones the URL carries.
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in spec["env"] if "valueFrom" in e}
    given = {name: secret_data(ref["name"])[ref["key"]] for name, ref in env.items()}
    assert given == {
        "POSTGRES_USER": url.username,
        "POSTGRES_PASSWORD": url.password,
        "POSTGRES_DB": url.path.lstrip("/"),
    }
    # Its data lives on the claimed volume, in a subdirectory initdb may own.
    [claim] = database["spec"]["volumeClaimTemplates"]
    [mount] = spec["volumeMounts"]
    assert mount["name"] == claim["metadata"]["name"]
    assert env_of(spec)["PGDATA"].startswith(mount["mountPath"] + "/")
    assert "FOR TRYING JOBWIRE ONLY" in (DEPLOY / "k8s" / "postgres.yaml").read_text()
    # The same PostgreSQL as the Compose file's.
    compose = yaml.safe_load((DEPLOY / "compose.postgres.yaml").read_text())["services"]
    assert compose["postgres"]["image"] == spec["image"]


def test_each_service_selects_the_pods_of_its_own_component_only() -> None:
    workloads = [doc for doc in every_resource() if doc["kind"] in ("Deployment", "StatefulSet")]
    for service in (doc for doc in every_resource() if doc["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        chosen = [
            w["metadata"]["name"]
            for w in workloads
            if selector <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert chosen == [service["metadata"]["name"]], (service["metadata"]["name"], chosen)


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_store_urls_name_the_store_service_and_its_credentials(name: str) -> None:
    services = yaml.safe_load((DEPLOY / name).read_text())["services"]
    url = urlsplit(services["api"]["environment"]["JOBWIRE_URL"])
    assert url.hostname in services
    store = services[url.hostname]
    if url.scheme == "postgresql":
        assert store["environment"] == {
            "POSTGRES_USER": url.username,
            "POSTGRES_PASSWORD": url.password,
            "POSTGRES_DB": url.path.lstrip("/"),
        }


# -- the image starts with no store URL --------------------------------------------------


def dockerfile_final_stage() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return lines[last_from:]


def test_the_image_works_in_a_data_directory_its_user_owns_and_sets_no_store_url() -> None:
    stage = dockerfile_final_stage()
    [workdir] = [line.split()[1] for line in stage if line.startswith("WORKDIR ")]
    [user] = [line.split()[1] for line in stage if line.startswith("USER ")]
    [volume] = [line for line in stage if line.startswith("VOLUME ")]
    assert f'"{workdir}"' in volume
    uid, gid = user.split(":")
    assert re.search(rf"install -d -o {uid} -g {gid} (-m \d+ )?{workdir}\b", " ".join(stage))
    env = " ".join(line for line in stage if line.startswith("ENV "))
    assert "JOBWIRE_URL" not in env and "PYTHONPATH=/app" in env
    assert "COPY deploy/service.py /app/service.py" in stage
    # The default store is a relative SQLite path: the working directory.
    assert DEFAULTS.url == "sqlite:///./jobwire.db"


def test_the_image_layout_serves_and_runs_a_job_without_a_store_url(tmp_path: Path) -> None:
    """The final stage's layout rebuilt here: the app's modules in app/ on PYTHONPATH,
    a read-only directory; the working directory data/; no JOBWIRE_* variable."""
    app, data = tmp_path / "app", tmp_path / "data"
    shutil.copytree(ROOT / "examples", app / "examples", ignore=shutil.ignore_patterns("__py*"))
    shutil.copy(DEPLOY / "service.py", app / "service.py")
    for path in [app, *app.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    data.mkdir()
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = subprocess_env(PYTHONPATH=os.pathsep.join([str(app), *inherited]))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = ["service:app", "--host", "127.0.0.1", "--port", str(port)]
    server = Proc([str(BIN / "uvicorn"), *command], cwd=data, env=env)
    try:
        server.wait_for(r"Uvicorn running on")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            assert client.get("/jobs/health/ready").status_code == 200
            job = client.post("/jobs", json={"job": "crawl", "args": {"urls": ["a"]}})
            assert job.status_code == 202, job.text
            done = client.get(job.headers["location"], params={"wait": 45}).json()
            assert done["state"] == "succeeded", done
        assert (data / "jobwire.db").exists()
    finally:
        server.kill()
        for path in [app, *app.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
