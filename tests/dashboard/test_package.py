"""The dashboard's files ship in the wheel, and the page loads nothing from elsewhere."""

from __future__ import annotations

import re
import subprocess
import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "jobwire" / "dashboard" / "static"


def test_the_wheel_takes_the_whole_package_and_nothing_excludes_the_static_files() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    # Hatchling ships every file under a listed package that no exclude or .gitignore
    # pattern removes: the HTML, script and style travel with the Python modules.
    assert wheel["packages"] == ["src/jobwire"]
    assert not {"only-include", "exclude", "artifacts"} & set(wheel)
    files = sorted(str(p.relative_to(ROOT)) for p in STATIC.iterdir())
    assert {Path(f).name for f in files} >= {"index.html", "login.html", "app.js", "app.css"}
    ignored = subprocess.run(
        ["git", "check-ignore", *files], cwd=ROOT, capture_output=True, text=True
    )
    assert ignored.stdout == "", f"ignored, so left out of the wheel: {ignored.stdout}"


def test_the_installed_package_reads_its_static_files() -> None:
    folder = resources.files("jobwire.dashboard").joinpath("static")
    assert "EventSource" in folder.joinpath("app.js").read_text("utf-8")
    assert "{{csrf}}" in folder.joinpath("index.html").read_text("utf-8")


def test_nothing_is_loaded_from_another_site() -> None:
    for path in STATIC.iterdir():
        text = path.read_text("utf-8")
        assert re.search(r"(src|href)=\"(https?:)?//", text) is None, path.name
        assert "@import" not in text and "url(http" not in text, path.name
        assert 'fetch("http' not in text and "innerHTML" not in text, path.name
