"""Child processes of the test process: none may outlive the test that started it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psutil


@contextmanager
def no_new_child_survives(grace: float = 5.0) -> Iterator[None]:
    """Fail if a child process started inside the block is still alive ``grace`` s after."""
    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    yield
    left = [c for c in me.children(recursive=True) if c.pid not in before]
    _, alive = psutil.wait_procs(left, timeout=grace)
    assert not alive, f"child processes left running: {[p.pid for p in alive]}"
