"""The peers' virtualenvs: one per peer (their pinned Redis clients disagree), made once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venv"

# The versions the project's notes measured; pinned so that runs stay comparable.
PINS: dict[str, list[str]] = {
    "procrastinate": ["procrastinate[psycopg]==3.10.0", "psycopg[binary]>=3.2"],
    # pgqueuer 1.6's `pgq` cannot parse its own --log-level default with typer >= 0.16.
    "pgqueuer": ["pgqueuer[asyncpg]==1.6.0", "typer==0.15.4"],
    "celery": ["celery[redis]==5.7.0"],
    "arq": ["arq==0.28.0"],
    "rq": ["rq==3.0.0"],
}


def python(peer: str) -> Path:
    return VENVS / peer / "bin" / "python"


def ensure(peer: str) -> Path:
    """Create the peer's virtualenv and install its pinned packages, unless already done."""
    stamp = VENVS / peer / ".installed"
    wanted = "\n".join(PINS[peer])
    if stamp.exists() and stamp.read_text() == wanted:
        return python(peer)
    print(f"installing {peer} into {VENVS / peer} …", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENVS / peer)], check=True)
    subprocess.run(
        [
            str(python(peer)),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *PINS[peer],
        ],
        check=True,
    )
    stamp.write_text(wanted)
    return python(peer)
