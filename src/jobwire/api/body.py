"""Request bodies, read as hostile input: bounded before they are read, JSON only when
declared as JSON, and parsed strictly.

Strict means RFC 8259 and nothing more: no ``NaN``, ``Infinity`` or ``-Infinity`` (Python's
parser accepts them, no other client can read them back, and a stored one could not be
rendered again), no number literal longer than :data:`MAX_NUMBER_CHARS` or past the range
of a double, and no nesting deeper than :data:`MAX_DEPTH`. Each refusal is a 422 naming
the body; nothing of the refused value is echoed.

Why the content type matters: a page of any site can make a browser send a POST with
``text/plain``, a form or multipart body without asking first (a "simple" request, no
CORS preflight). Refusing every other type with 415 means only a client that may send
``application/json`` (a script of this origin, or a non-browser client) gets a body in.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import HTTPException, status
from starlette.requests import HTTPConnection, Request

from jobwire.api.problems import invalid

MAX_DEPTH = 64
MAX_NUMBER_CHARS = 100


class _Refused(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _number(text: str, kind: type[int] | type[float]) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number literal longer than {MAX_NUMBER_CHARS} characters")
    value = kind(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Refused("a number out of the range of a double")
    return value


_DECODER = json.JSONDecoder(
    parse_constant=_constant,
    parse_int=lambda text: _number(text, int),
    parse_float=lambda text: _number(text, float),
)


def _check(value: Any) -> str | None:
    """Why ``value`` cannot be taken, or None: arrays and objects nested deeper than
    :data:`MAX_DEPTH`, or a string holding a lone surrogate (``"\\ud800"`` is valid JSON
    text but no Unicode string: it could not be stored or sent again). Iterative, so
    the walk itself has no depth limit."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return "body holds a string with a lone surrogate (not Unicode text)"
            continue
        if isinstance(item, dict):
            stack.extend((key, level) for key in item)
            item = list(item.values())
        if isinstance(item, list):
            level += 1
            if level > MAX_DEPTH:
                return _too_deep()
            stack.extend((child, level) for child in item)
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def loads(raw: bytes | str, loc: tuple[str, ...] = ("body",)) -> Any:
    """Parse ``raw`` as strict JSON, or raise a 422 naming ``loc``."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)
    except _Refused as exc:
        raise invalid(loc, f"body is not accepted JSON: {exc}", "json_invalid") from None
    except RecursionError:
        raise invalid(loc, _too_deep(), "json_invalid") from None
    except UnicodeDecodeError:
        raise invalid(loc, "body is not valid UTF-8", "json_invalid") from None
    except ValueError as exc:  # JSONDecodeError, and int()'s own digit limit
        raise invalid(loc, f"body is not valid JSON: {exc}", "json_invalid") from None
    reason = _check(value)
    if reason is not None:
        raise invalid(loc, reason, "json_invalid")
    return value


def _too_deep() -> str:
    return f"body nests arrays and objects deeper than {MAX_DEPTH} levels"


def is_json_type(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type, any parameters."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def require_json(request: Request, *, body_optional: bool = False) -> None:
    """415 unless the request declares a JSON body. With ``body_optional``, a request
    declaring no type at all passes (an action without a body)."""
    declared = request.headers.get("content-type")
    if declared is None and body_optional:
        return
    if not is_json_type(declared):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"expected Content-Type: application/json, got {_shown(declared)}",
        )


def _shown(content_type: str | None) -> str:
    if not content_type:
        return "none"
    media = content_type.split(";", 1)[0].strip()[:100]
    return media if media.isprintable() else repr(media)


async def read_bounded(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to exceed ``limit`` bytes: a declared
    ``Content-Length`` is refused before a byte is read, a stream once it passes."""
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"request body exceeds {limit} bytes"
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if not (declared.isascii() and declared.isdigit()):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid Content-Length")
        if len(declared) > 18 or int(declared) > limit:
            raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int, *, empty: Any = None) -> Any:
    """The body of a JSON route: declared as JSON, bounded, strictly parsed. An empty
    body is ``empty`` when given (and then no content type is needed either)."""
    require_json(request, body_optional=empty is not None)
    raw = await read_bounded(request, limit)
    if not raw.strip() and empty is not None:
        return empty
    return loads(raw)


def refuse_nul(connection: HTTPConnection) -> None:
    """422 for a query or path parameter holding a NUL character: no store keeps one in
    a text column (PostgreSQL refuses it outright), and no name or filter needs one."""
    for where, params in (
        ("query", connection.query_params.multi_items()),
        ("path", list(connection.path_params.items())),
    ):
        for name, value in params:
            if isinstance(value, str) and "\x00" in value:
                raise invalid((where, name), "must not contain NUL characters", "string_nul")
