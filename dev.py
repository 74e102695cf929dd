#!/usr/bin/env python3
"""Set up and run jobwire on a fresh machine. Standard library only; Python 3.11+.

    python3 dev.py demo [jobwire demo options]   the demo at http://127.0.0.1:8000
    python3 dev.py test [pytest arguments]       the whole test suite

Both create ``.venv`` when it is missing and install the project into it (editable, with
the ``dev`` dependency group: test, lint and packaging tools that jobwire's users never
get) whenever ``pyproject.toml`` changed since the last install. The group is read here,
so any pip will do (``pip install --group`` needs pip 25.1).
``test`` exits with pytest's exit code; "no tests collected" (5) counts as a failure.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = ".jobwire-install-stamp"
MIN_PYTHON = (3, 11)
NO_TESTS_COLLECTED = 5

USAGE = """usage: python3 dev.py demo [jobwire demo options]
       python3 dev.py test [pytest arguments]"""


def say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def venv_executable(venv: Path, name: str) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / f"{name}.exe"
    return venv / "bin" / name


def install_fingerprint(pyproject: Path) -> str:
    """What the install depends on: the project file's contents."""
    return hashlib.sha256(pyproject.read_bytes()).hexdigest()


def install_needed(venv: Path, pyproject: Path) -> bool:
    stamp = venv / STAMP
    try:
        return stamp.read_text().strip() != install_fingerprint(pyproject)
    except FileNotFoundError:
        return True


def record_install(venv: Path, pyproject: Path) -> None:
    (venv / STAMP).write_text(install_fingerprint(pyproject) + "\n")


def dependency_group(pyproject: Path, name: str) -> list[str]:
    """The requirements of a PEP 735 dependency group, with the groups it includes."""
    groups = tomllib.loads(pyproject.read_text())["dependency-groups"]

    def expand(group: str, seen: tuple[str, ...]) -> list[str]:
        if group in seen:
            raise ValueError(f"dependency group {group!r} includes itself")
        requirements: list[str] = []
        for entry in groups[group]:
            if isinstance(entry, str):
                requirements.append(entry)
            else:
                requirements.extend(expand(entry["include-group"], (*seen, group)))
        return requirements

    return expand(name, ())


def run(command: Sequence[str | Path]) -> int:
    """Run a child in the foreground; Ctrl-C reaches it (same process group), and this
    process waits for it to finish its own shutdown instead of dying first."""
    child = subprocess.Popen([str(part) for part in command], cwd=ROOT)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    forward = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, forward)


def ensure_environment() -> Path:
    """The virtualenv's Python, created and installed as needed."""
    python = venv_executable(VENV, "python")
    if not python.exists():
        say(f"creating {VENV.relative_to(ROOT)} with Python {sys.version.split()[0]}")
        code = run([sys.executable, "-m", "venv", VENV])
        if code != 0:
            raise SystemExit(code)
    pyproject = ROOT / "pyproject.toml"
    if install_needed(VENV, pyproject):
        say("installing -e . and the dev group (pyproject.toml is new or changed)")
        code = run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-e",
                ".",
                *dependency_group(pyproject, "dev"),
            ]
        )
        if code != 0:
            say("installation failed")
            raise SystemExit(code)
        record_install(VENV, pyproject)
    return python


def exit_code_for(pytest_code: int) -> int:
    if pytest_code == NO_TESTS_COLLECTED:
        say("pytest collected no tests; that is a failure")
    return pytest_code


def main(argv: Sequence[str]) -> int:
    if sys.version_info < MIN_PYTHON:
        say(
            f"Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed; "
            f"this is {sys.version.split()[0]}"
        )
        return 2
    if not argv or argv[0] not in ("demo", "test"):
        print(USAGE, file=sys.stderr)
        return 2
    command, rest = argv[0], list(argv[1:])
    python = ensure_environment()
    if command == "demo":
        return run([venv_executable(VENV, "jobwire"), "demo", *rest])
    return exit_code_for(run([python, "-m", "pytest", *rest]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
