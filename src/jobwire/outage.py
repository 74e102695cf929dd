"""How a long-running loop lives through its store going away for a while.

Every loop that talks to the store (claiming, heartbeats, the maintenance services, the
webhook sender, the wake-up listeners) keeps one :class:`Outage`. On a failure it asks
:meth:`Outage.failed` how long to wait: capped exponential backoff with jitter, so many
processes coming back at once do not arrive as one wave. It logs the outage when it
begins, a reminder while it lasts, and its end: a few lines per outage, never a line per
try.
"""

from __future__ import annotations

import logging
import time

from jobwire.retry import Backoff

# From a tenth of a second up to five: an outage of a few seconds costs a few seconds.
STORE_BACKOFF = Backoff(base=0.1, factor=2.0, cap=5.0, jitter=0.5)
REMIND_EVERY = 60.0


class Outage:
    """One loop's view of its store: reachable, or away since when."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        backoff: Backoff = STORE_BACKOFF,
        remind_every: float = REMIND_EVERY,
    ) -> None:
        self._log = log
        self.what = what
        self.backoff = backoff
        self.remind_every = remind_every
        self.failures = 0  # consecutive failed tries
        self._since = 0.0
        self._reminded = 0.0

    @property
    def ongoing(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> float:
        """Record a failed try; return how many seconds to wait before the next."""
        now = time.monotonic()
        self.failures += 1
        delay = self.backoff.delay(self.failures)
        if self.failures == 1:
            self._since = self._reminded = now
            self._log.warning(
                "%s: the store is unavailable (%s); retrying with backoff", self.what, exc
            )
        elif now - self._reminded >= self.remind_every:
            self._reminded = now
            self._log.warning(
                "%s: the store is still unavailable after %.0f s (%d tries): %s",
                self.what,
                now - self._since,
                self.failures,
                exc,
            )
        else:
            self._log.debug("%s: still unavailable (%s); next try in %.2f s", self.what, exc, delay)
        return delay

    def succeeded(self) -> None:
        """Record a successful try; logs the end of an outage."""
        if self.failures:
            self._log.warning(
                "%s: the store is reachable again after %.1f s",
                self.what,
                time.monotonic() - self._since,
            )
            self.failures = 0
