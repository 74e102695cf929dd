"""Job ids: UUIDv7 (RFC 9562), time-ordered, with every random bit from the OS CSPRNG."""

from __future__ import annotations

import os
import time
import uuid


def new_job_id(now_ms: int | None = None) -> str:
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits drawn, 74 used
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a: 12 bits
    value |= 0b10 << 62  # RFC 9562 variant
    value |= rand & ((1 << 62) - 1)  # rand_b: 62 bits
    return str(uuid.UUID(int=value))


def is_job_id(text: str) -> bool:
    try:
        parsed = uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        return False
    return str(parsed) == text.lower()


def new_token() -> str:
    return os.urandom(16).hex()


def new_tokens(count: int) -> list[str]:
    """``count`` tokens from one read of the system's random source."""
    raw = os.urandom(16 * count).hex()
    return [raw[i : i + 32] for i in range(0, 32 * count, 32)]
