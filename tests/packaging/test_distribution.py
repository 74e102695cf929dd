"""The distribution as a user gets it: ``python -m build`` makes the sdist and, from it,
the wheel; the wheel installs into a fresh virtualenv with its runtime dependencies only
(no dev tools), and the quick start runs from there — server, worker and CLI — importing
the installed wheel, never this checkout."""

from __future__ import annotations

import email.parser
import os
import socket
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from jobwire.api.docs import SWAGGER_UI_VERSION
from tests.cli.conftest import Proc

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Installed:
    venv: Path
    env: dict[str, str]

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def python(self, code: str, cwd: Path) -> str:
        done = subprocess.run(
            [self.bin("python"), "-c", code],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def isolated_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would import this checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JOBWIRE_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="200", **extra)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    # No isolation: the build backend (hatchling) is in the dev group, so this needs no
    # network. Without --sdist/--wheel, build makes the wheel from the sdist: a file
    # missing from the sdist breaks the wheel here, not on a user's machine.
    run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out)],
        ROOT,
        isolated_env(),
    )
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return Dist(sdist, wheel)


@pytest.fixture(scope="module")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    env = isolated_env()
    run([sys.executable, "-m", "venv", str(venv)], venv.parent, env)
    # Runtime dependencies come from the package index, as on a user's machine.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    run([*pip, str(dist.wheel)], venv.parent, env)
    return Installed(venv, env)


def test_the_wheel_ships_the_package_its_assets_and_licences_and_no_tests(dist: Dist) -> None:
    assert dist.wheel.name == f"jobwire-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = email.parser.Parser().parsestr(
            wheel.read(f"jobwire-{VERSION}.dist-info/METADATA").decode()
        )
    assert "jobwire/py.typed" in names
    for data in ("store/sql/postgres.sql", "store/sql/sqlite.sql", "store/lua/redis.lua"):
        assert f"jobwire/{data}" in names
    assert "jobwire/dashboard/static/app.js" in names
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"):
        assert f"jobwire/api/static/swagger-ui/{asset}" in names
    assert f"jobwire-{VERSION}.dist-info/licenses/LICENSE" in names
    assert not any(n.startswith(("tests/", "examples/", "benchmarks/")) for n in names)
    assert metadata["License-Expression"] == "MIT"
    assert sorted(metadata.get_all("Provides-Extra")) == ["otel", "postgres", "redis"]
    requires = " ".join(metadata.get_all("Requires-Dist"))
    for tool in ("pytest", "ruff", "mypy", "playwright", "hadolint", "kubernetes-validate"):
        assert tool not in requires


def test_the_sdist_has_the_licence_changelog_and_the_tests(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "src/jobwire/py.typed"} <= (
        names
    )
    assert "tests/packaging/test_distribution.py" in names
    assert not any(n.startswith((".venv/", "test-artifacts/")) for n in names)


def test_the_fresh_install_imports_the_wheel_without_dev_tools(
    installed: Installed, tmp_path: Path
) -> None:
    where = installed.python("import jobwire; print(jobwire.__file__)", tmp_path)
    assert Path(where).is_relative_to(installed.venv) and "site-packages" in where
    assert not Path(where).is_relative_to(ROOT)
    shipped = installed.python(
        "from importlib.metadata import distribution as d; "
        "print(d('jobwire').read_text('direct_url.json') or '')",
        tmp_path,
    )
    assert ".whl" in shipped and '"editable"' not in shipped
    missing = installed.python(
        "import importlib.util as u; "
        "print([m for m in ('pytest', 'ruff', 'playwright', 'mypy') if u.find_spec(m)])",
        tmp_path,
    )
    assert missing == "[]"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project: the quick-start app, and nothing of this checkout."""
    (tmp_path / "app.py").write_text((ROOT / "examples" / "app.py").read_text())
    return tmp_path


@pytest.fixture
def processes() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


def test_the_quick_start_runs_from_the_installed_wheel(
    installed: Installed, project: Path, processes: list[Proc]
) -> None:
    port = free_port()
    env = {
        **installed.env,
        "JOBWIRE_URL": f"sqlite:///{project / 'jobwire.db'}",
        "JOBWIRE_EMBEDDED_WORKERS": "false",  # the worker below runs the jobs
    }
    server = Proc([installed.bin("uvicorn"), "app:app", "--port", str(port)], cwd=project, env=env)
    processes.append(server)
    server.wait_for(r"Uvicorn running on")
    processes.append(Proc([installed.bin("jobwire"), "worker", "app:jobs"], cwd=project, env=env))

    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=60) as client:
        submitted = client.post("/jobs", json={"job": "crawl", "args": {"urls": ["a", "b"]}})
        assert submitted.status_code == 202, submitted.text
        done = client.get(submitted.headers["location"], params={"wait": 45}).json()
        assert (done["state"], done["result"]) == ("succeeded", 2), done
        docs = client.get("/docs")
        assert docs.status_code == 200
        bundle = client.get("/docs/static/swagger-ui-bundle.js", params={"v": SWAGGER_UI_VERSION})
        assert bundle.status_code == 200 and len(bundle.content) > 100_000

    # The CLI of the installed wheel: a process job through the same store and worker.
    followed = subprocess.run(
        [installed.bin("jobwire"), "submit", "crunch", "n=1000", "--app", "app:jobs", "--follow"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert "332833500" in followed.stdout + followed.stderr  # sum of squares below 1000
