"""The webhook outbox service: claims due deliveries and sends them, signed.

Deliveries are rows the store writes in the same transaction as the events that call
for them, so an event is never committed without its delivery. This service, running
in every process that runs services (the server's lifespan and standalone workers),
claims due deliveries with a lease — so concurrent senders never send the same attempt
twice — and records each attempt, fenced by its claim token. A sender killed mid-send
leaves the lease to run out; another sends it again with the same ``webhook-id``: this
is at-least-once delivery, and receivers dedupe by that id.

What an attempt's answer does:

==================================  =========================================================
2xx                                 delivered
410 Gone                            disabled, with every pending delivery of the job to that
                                    URL; no more are created for it
429 or 503 with ``Retry-After``     retried after that many seconds or at that HTTP date
                                    (capped at ``JOBWIRE_WEBHOOK_BACKOFF_CAP_SECONDS``)
3xx                                 a failure: redirects are never followed
any other status, a timeout, a      retried with exponential backoff and jitter until
refused connection, a refused or    ``JOBWIRE_WEBHOOK_MAX_ATTEMPTS`` attempts, then failed
unresolvable address
==================================  =========================================================

The service wakes on the store's ``WEBHOOKS`` notices, at the next due retry, or every
``JOBWIRE_WEBHOOK_POLL_SECONDS`` in case a wake-up was lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC

import httpx

from jobwire.errors import JobwireError, StaleClaim, StoreUnavailable
from jobwire.outage import Outage
from jobwire.retry import Backoff
from jobwire.services.base import Service
from jobwire.settings import Settings
from jobwire.store.base import Delivery, DeliveryStatus, Notice, NoticeKind, Store
from jobwire.webhooks.egress import (
    EgressError,
    EgressPolicy,
    Resolver,
    checked_addresses,
    pinned_request,
)
from jobwire.webhooks.signing import decode_secret, signed_headers

log = logging.getLogger("jobwire.webhooks")

USER_AGENT = "jobwire-webhooks/1"
BACKOFF_FACTOR = 3.0
_SNIPPET_BYTES = 256  # of a failed answer's body, kept in last_error
_HISTORY = 1000
_WAKES_SENDER = (NoticeKind.WEBHOOKS, NoticeKind.RESYNC)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt's answer (or its absence) means."""

    ok: bool = False
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, from a Retry-After header
    gone: bool = False  # 410: disable the URL for this job


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def judge(response: httpx.Response, snippet: bytes = b"", now: float | None = None) -> Outcome:
    """The outcome of an attempt that got an HTTP answer."""
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(ok=True, status_code=code)
    if code == 410:
        return Outcome(status_code=code, error="HTTP 410 Gone: the URL is disabled", gone=True)
    if 300 <= code < 400:
        location = response.headers.get("location", "")
        return Outcome(
            status_code=code, error=f"HTTP {code}: redirect to {location!r} not followed"
        )
    retry_after = None
    if code in (429, 503):
        retry_after = parse_retry_after(
            response.headers.get("retry-after"), time.time() if now is None else now
        )
    text = snippet.decode("utf-8", "replace").strip()
    return Outcome(
        status_code=code,
        error=f"HTTP {code}" + (f": {text}" if text else ""),
        retry_after=retry_after,
    )


class Outbox(Service):
    """Sends due webhook deliveries. ``run_once()`` sends one batch (tests call it)."""

    name = "webhook-outbox"

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(settings.webhook_poll_seconds)
        self.store = store
        self.settings = settings
        self.key = decode_secret(settings.webhook_secret)
        self.policy = EgressPolicy.from_settings(settings)
        self.backoff = Backoff(
            base=settings.webhook_backoff_seconds,
            factor=BACKOFF_FACTOR,
            cap=settings.webhook_backoff_cap_seconds,
        )
        self.batch = settings.webhook_concurrency
        self._resolver = resolver
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        # Test signals: the attempts this sender recorded, newest last.
        self.history: collections.deque[Delivery] = collections.deque(maxlen=_HISTORY)
        self._waiters: list[tuple[Callable[[Delivery], bool], asyncio.Future[Delivery]]] = []

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.store.add_listener(self._on_notices)
        super().start()

    async def stop(self) -> None:
        """Let attempts in flight finish and be recorded (each is bounded by the
        timeout), so no delivery is left leased; then stop."""
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is not None:
            await asyncio.wait([task], timeout=self.settings.webhook_timeout_seconds + 1)
        await super().stop()
        self.store.remove_listener(self._on_notices)
        await self.aclose()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> Outbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _on_notices(self, notices: Sequence[Notice]) -> None:
        if any(notice.kind in _WAKES_SENDER for notice in notices):
            self._wake.set()

    async def run(self) -> None:
        outage = Outage(log, f"webhook {self.name}")
        while not self._stopping:
            self._wake.clear()
            claimed = 0
            try:
                claimed = await self.run_once()
                outage.succeeded()
            except StoreUnavailable as exc:
                await self._idle(outage.failed(exc))
                continue
            except JobwireError as exc:
                log.warning("%s: %s", self.name, exc)
            except Exception:
                log.exception("%s failed", self.name)
            if self._stopping:
                return
            if claimed < self.batch:  # a full batch: more may be due at once
                await self._idle()

    async def _idle(self, backoff: float | None = None) -> None:
        wait = self.interval if backoff is None else backoff
        with contextlib.suppress(JobwireError):
            due = None if backoff is not None else await self.store.next_delivery_at()
            if due is not None:
                wait = min(wait, max(0.01, due - time.time()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._wake.wait()

    # -- one batch -----------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim the due deliveries (one batch) and send each once; return how many."""
        deliveries = await self.store.claim_deliveries(
            self.batch, self.settings.webhook_lease_seconds
        )
        if deliveries:
            await asyncio.gather(*(self._deliver(delivery) for delivery in deliveries))
        return len(deliveries)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            outcome = await self.attempt(delivery)
        except Exception as exc:  # a bug here must not leave the delivery leased
            log.exception("webhook %s: attempt failed unexpectedly", delivery.id)
            outcome = Outcome(error=f"{type(exc).__name__}: {exc}")
        attempts = delivery.attempts + 1
        next_at = None
        if not outcome.ok and not outcome.gone and attempts < self.settings.webhook_max_attempts:
            delay = outcome.retry_after
            if delay is None:
                delay = self.backoff.delay(attempts)
            next_at = time.time() + min(delay, self.settings.webhook_backoff_cap_seconds)
        assert delivery.claim_token is not None
        try:
            # The answer has been had: record it even if this task is being cancelled.
            recorded = await asyncio.shield(
                self.store.record_delivery_attempt(
                    delivery.id,
                    delivery.claim_token,
                    ok=outcome.ok,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    next_attempt_at=next_at,
                    disable_url=outcome.gone,
                )
            )
        except StaleClaim:
            log.info("webhook %s: no longer ours to record (lease lost or disabled)", delivery.id)
            return
        self._log(recorded, next_at)
        self._signal(recorded)

    def _log(self, recorded: Delivery, next_at: float | None) -> None:
        if recorded.status is DeliveryStatus.DELIVERED:
            log.debug("webhook %s delivered to %s", recorded.id, recorded.url)
        elif next_at is not None:
            log.warning(
                "webhook %s to %s: attempt %d of %d failed (%s); next in %.1f s",
                recorded.id,
                recorded.url,
                recorded.attempts,
                self.settings.webhook_max_attempts,
                recorded.last_error,
                next_at - time.time(),
            )
        else:
            log.warning(
                "webhook %s to %s: %s after %d attempts (%s)",
                recorded.id,
                recorded.url,
                recorded.status.value,
                recorded.attempts,
                recorded.last_error,
            )

    async def attempt(self, delivery: Delivery) -> Outcome:
        """Send the delivery once: resolve, check, connect to a checked address, judge."""
        timeout = self.settings.webhook_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                return await self._send(delivery)
        except TimeoutError:
            return Outcome(error=f"timed out after {timeout:g} s")
        except EgressError as exc:
            return Outcome(error=str(exc))

    async def _send(self, delivery: Delivery) -> Outcome:
        url = httpx.URL(delivery.url)
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await checked_addresses(url.host, port, self.policy, self._resolver)
        body = delivery.body.encode()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signed_headers(self.key, delivery.id, math.floor(time.time()), body),
        }
        client = self._http()
        failure = "no address to connect to"
        for address in addresses:
            request = pinned_request(url, address, headers=headers, content=body)
            try:
                response = await client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = f"cannot connect to {address} port {port}: {exc or type(exc).__name__}"
                continue  # try the next checked address
            except httpx.TimeoutException as exc:
                return Outcome(error=f"timed out: {type(exc).__name__}")
            except httpx.HTTPError as exc:
                return Outcome(error=f"{type(exc).__name__}: {exc}")
            try:
                snippet = b"" if response.is_success else await _first_bytes(response)
            finally:
                await response.aclose()
            return judge(response, snippet)
        return Outcome(error=failure)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,  # a 3xx is an answer, never a new target
                trust_env=False,  # no proxy from the environment: it would resolve the name
                timeout=httpx.Timeout(self.settings.webhook_timeout_seconds),
                # No connection reuse: a pooled TLS connection is keyed by address, and
                # must not carry a request for another name that shares it.
                limits=httpx.Limits(max_keepalive_connections=0),
                transport=self._transport,
            )
        return self._client

    # -- test signals ----------------------------------------------------------------------

    def _signal(self, recorded: Delivery) -> None:
        self.history.append(recorded)
        for waiter in list(self._waiters):
            matches, future = waiter
            if not future.done() and matches(recorded):
                future.set_result(recorded)
                self._waiters.remove(waiter)

    async def recorded(self, matches: Callable[[Delivery], bool]) -> Delivery:
        """The first attempt this sender recorded (already, or from now on) that matches."""
        for delivery in self.history:
            if matches(delivery):
                return delivery
        future: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        waiter = (matches, future)
        self._waiters.append(waiter)
        try:
            return await future
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)


async def _first_bytes(response: httpx.Response, limit: int = _SNIPPET_BYTES) -> bytes:
    """Up to ``limit`` bytes of the answer's body, for the error; never the whole of it."""
    data = b""
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in response.aiter_raw():
            data += chunk
            if len(data) >= limit:
                break
    return data[:limit]
