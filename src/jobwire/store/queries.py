"""Load files of named SQL statements (``-- name: NAME`` headers), once."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def load(filename: str) -> dict[str, str]:
    text = resources.files("jobwire.store").joinpath("sql", filename).read_text("utf-8")
    parts = _HEADER.split(text)
    statements: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        statements[name] = body.strip()
    return statements
