"""How large what a job hands back may be: its result, its outputs, its progress
messages and its error.

Sizes are those of the value's compact JSON encoding in UTF-8, the form the store keeps
and every channel sends. A result or an output over its limit breaks the job's contract
(:class:`~jobwire.errors.LimitExceeded`: the attempt fails and is not retried); a
progress message or an error is cut to fit instead, because it describes the work
rather than being its product.

Imports nothing of jobwire but ``errors``: a job process checks here before anything
crosses its pipe.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from jobwire.errors import LimitExceeded

ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Limits:
    result_bytes: int = 1_048_576
    output_bytes: int = 262_144
    progress_message_bytes: int = 4_096
    traceback_bytes: int = 16_384

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def check_result(self, value: Any) -> None:
        """Raise LimitExceeded when ``value`` (JSON) is over JOBWIRE_MAX_RESULT_BYTES."""
        _check("the result", value, self.result_bytes, "JOBWIRE_MAX_RESULT_BYTES")

    def check_output(self, value: Any) -> None:
        """Raise LimitExceeded when ``value`` (JSON) is over JOBWIRE_MAX_OUTPUT_BYTES."""
        _check("an output", value, self.output_bytes, "JOBWIRE_MAX_OUTPUT_BYTES")

    def clip_message(self, message: str | None) -> str | None:
        """A progress message cut to JOBWIRE_MAX_PROGRESS_MESSAGE_BYTES, keeping its start."""
        if message is None:
            return None
        return clip_start(message, self.progress_message_bytes)

    def clip_error(self, error: dict[str, Any]) -> dict[str, Any]:
        """An error whose message and traceback fit JOBWIRE_MAX_TRACEBACK_BYTES: the
        message keeps its start, the traceback its end (where the exception is)."""
        message, trace = error.get("message"), error.get("traceback")
        clipped = dict(error)
        if isinstance(message, str):
            clipped["message"] = clip_start(message, self.traceback_bytes)
        if isinstance(trace, str):
            clipped["traceback"] = clip_end(trace, self.traceback_bytes)
        return clipped


def json_size(value: Any) -> int:
    """Bytes of ``value``'s compact JSON encoding in UTF-8."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # A str of n code points is at least n bytes; count exactly only when it may matter.
    return len(text) if text.isascii() else len(text.encode())


def _check(what: str, value: Any, limit: int, setting: str) -> None:
    if isinstance(value, int | float | bool) or value is None:
        return  # a scalar is a few bytes: no encoding needed to know it fits
    size = json_size(value)
    if size > limit:
        raise LimitExceeded(what, size, setting, limit)


def clip_start(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes, its start kept, an ellipsis at the cut."""
    if len(text) <= limit // 4:
        return text  # at most 4 bytes a code point: certainly fits
    data = text.encode()
    if len(data) <= limit:
        return text
    keep = max(0, limit - len(ELLIPSIS.encode()))
    return data[:keep].decode(errors="ignore") + ELLIPSIS


def clip_end(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes, its end kept, a note of the cut first."""
    if len(text) <= limit // 4:
        return text
    data = text.encode()
    if len(data) <= limit:
        return text
    note = f"{ELLIPSIS}[{len(data) - limit:,}+ bytes cut]\n"
    keep = max(0, limit - len(note.encode()))
    return note + data[len(data) - keep :].decode(errors="ignore")
