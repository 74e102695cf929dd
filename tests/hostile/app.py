"""The jobs hostile-input tests submit: arguments as loose as a job may declare them,
run on the server's own loop so a test sees them succeed (or fail) within moments."""

from __future__ import annotations

from typing import Any

from jobwire import Jobwire

jobs = Jobwire("memory://", embedded_workers=True)


@jobs.job
async def echo(value: Any = None) -> Any:
    """Returns its argument: whatever submit accepted is stored twice, as args and result."""
    return value


@jobs.job
async def measure(x: float = 0.0, n: int = 0, label: str = "") -> float:
    """Typed arguments: a float, an int, a string."""
    return x


@jobs.job
async def explode(message: str = "") -> None:
    """Fails with the message given: the stored error holds it."""
    raise RuntimeError(message)
