"""Sign-in attempts per client, bounded: guessing API keys is slow, and says so.

A sliding window per client address: at most ``limit`` attempts in any ``per_seconds``.
Past it, the attempt is refused before the body is read and the client is told how many
seconds to wait (``Retry-After``). The table of clients is bounded too, oldest dropped
first, so addresses that come and go cannot grow it without end.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class AttemptLimiter:
    MAX_CLIENTS = 10_000

    def __init__(
        self, limit: int, per_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.per_seconds = per_seconds
        self.clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def attempt(self, client: str) -> int | None:
        """Count an attempt by ``client``: None when allowed, else whole seconds to wait."""
        now = self.clock()
        times = self._seen.pop(client, None) or deque()
        while times and times[0] <= now - self.per_seconds:
            times.popleft()
        self._seen[client] = times
        if len(self._seen) > self.MAX_CLIENTS:
            self._seen.popitem(last=False)
        if len(times) >= self.limit:
            return max(1, math.ceil(times[0] + self.per_seconds - now))
        times.append(now)
        return None
