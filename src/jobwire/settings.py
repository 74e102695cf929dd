"""Settings: the only reader of ``JOBWIRE_*`` environment variables, validated once."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from jobwire.errors import ConfigError
from jobwire.limits import Limits
from jobwire.webhooks.signing import decode_secret

ENV_PREFIX = "JOBWIRE_"


def _cpu_count() -> int:
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob, with the environment variable that sets it (upper-cased, prefixed)."""

    url: str = "sqlite:///./jobwire.db"
    sqlite_synchronous: str = "NORMAL"
    postgres_pool_min: int = 1  # connections the PostgreSQL store keeps open
    postgres_pool_max: int = 10  # …and opens at most (besides one for LISTEN)
    # How long a server or worker starting while its store is away keeps trying to
    # open it: unlimited, as at run time; 0 fails at once.
    startup_timeout_seconds: float = math.inf
    # Workers
    embedded_workers: bool = True
    queues: tuple[str, ...] = ("default",)
    async_concurrency: int = 100
    thread_concurrency: int = 8
    process_concurrency: int = field(default_factory=_cpu_count)
    lease_seconds: float = 30.0
    poll_seconds: float = 2.0  # backstop when a wake-up is lost; not the hot path
    cancel_grace_seconds: float = 5.0
    shutdown_grace_seconds: float = 25.0
    max_crashes: int = 3  # lost leases before a job fails as one that kills its worker
    loop_lag_warn_seconds: float = 0.25
    event_loop: str = "auto"  # the CLI's loop: "auto" (uvloop when installed) or "asyncio"
    # Maintenance
    retention_seconds: float = 7 * 24 * 3600.0
    gc_tuning: bool = True  # servers and workers: freeze the start-up heap, rarer young GCs
    reap_interval_seconds: float = 0.0  # 0: lease_seconds / 3
    # How often each server and worker looks for due schedule ticks: a tick fires at
    # most this late while any of them runs.
    schedule_interval_seconds: float = 1.0
    # How often each server and worker moves running workflows on (a step's successors
    # start at most this long after it ends).
    workflow_interval_seconds: float = 0.5
    # What a job hands back, as compact UTF-8 JSON: over the limit a result or an output
    # fails the attempt for good; a progress message or an error's traceback is cut
    max_result_bytes: int = 1_048_576
    max_output_bytes: int = 262_144
    max_progress_message_bytes: int = 4_096
    max_traceback_bytes: int = 16_384
    # HTTP
    api_keys: str = ""  # "key1=owner1,key2=owner2"; empty: one anonymous owner
    allowed_origins: tuple[str, ...] = ()  # for WebSocket handshakes, besides our own
    # Without credentials (no API keys; an open dashboard), the Host names answered
    # besides loopback ones: "jobs.internal", ".example.com" (and every name under it),
    # or "*" for any; closes DNS rebinding
    allowed_hosts: tuple[str, ...] = ()
    sign_in_attempts_per_minute: int = 10  # dashboard sign-ins per client address
    # Stream tokens (?token= on the event streams, for browsers): their lifetime, and
    # the key that signs them (default: derived from the API keys)
    stream_token_seconds: float = 120.0
    stream_secret: str = field(default="", repr=False)
    sse_keepalive_seconds: float = 15.0
    sse_retry_ms: int = 2000
    max_streams_per_owner: int = 100
    max_body_bytes: int = 1_048_576
    max_wait_seconds: float = 60.0
    max_page_size: int = 200
    default_page_size: int = 50
    # Webhooks (Standard Webhooks): no secret, no webhooks
    webhook_secret: str = field(default="", repr=False)  # "whsec_" + base64 of the key
    webhook_max_attempts: int = 8
    webhook_backoff_seconds: float = 5.0  # before the first retry; then x3 each time
    webhook_backoff_cap_seconds: float = 3600.0  # also caps a receiver's Retry-After
    webhook_timeout_seconds: float = 10.0  # one attempt: resolving, connecting, answering
    webhook_concurrency: int = 16  # deliveries sent at once by one process
    webhook_poll_seconds: float = 5.0  # backstop when a wake-up is lost; not the hot path
    webhook_allow_private: bool = False  # private, loopback, link-local… targets allowed
    webhook_allowed_cidrs: tuple[str, ...] = ()  # or only these networks, e.g. "10.1.0.0/16"
    # Dashboard (P/ui): needs credentials unless opened for local development
    dashboard_open: bool = False  # anyone who reaches it sees and acts on every job

    def __post_init__(self) -> None:
        _positive(self, "async_concurrency", "thread_concurrency", "process_concurrency")
        _positive(self, "postgres_pool_min", "postgres_pool_max")
        if self.postgres_pool_min > self.postgres_pool_max:
            raise ConfigError(
                f"JOBWIRE_POSTGRES_POOL_MIN: expected at most JOBWIRE_POSTGRES_POOL_MAX "
                f"({self.postgres_pool_max}), got {self.postgres_pool_min}"
            )
        _positive(self, "lease_seconds", "poll_seconds", "max_body_bytes", "max_page_size")
        _positive(self, "max_crashes", "schedule_interval_seconds", "workflow_interval_seconds")
        _positive(self, "sse_keepalive_seconds", "sse_retry_ms", "max_streams_per_owner")
        _positive(self, "sign_in_attempts_per_minute")
        _positive(self, "stream_token_seconds")
        _non_negative(self, "cancel_grace_seconds", "shutdown_grace_seconds", "max_wait_seconds")
        _non_negative(self, "retention_seconds", "reap_interval_seconds")
        _non_negative(self, "startup_timeout_seconds")
        _positive(self, "max_result_bytes", "max_output_bytes")
        _positive(self, "max_progress_message_bytes", "max_traceback_bytes")
        if not self.queues or any(not q for q in self.queues):
            raise ConfigError(
                f"JOBWIRE_QUEUES: expected comma-separated names, got {self.queues!r}"
            )
        if self.event_loop not in ("auto", "asyncio", "uvloop"):
            raise ConfigError(
                f"JOBWIRE_EVENT_LOOP: expected auto, asyncio or uvloop, got {self.event_loop!r}"
            )
        if self.sqlite_synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ConfigError(
                "JOBWIRE_SQLITE_SYNCHRONOUS: expected NORMAL, FULL or EXTRA, "
                f"got {self.sqlite_synchronous!r}"
            )
        _positive(self, "webhook_max_attempts", "webhook_timeout_seconds", "webhook_concurrency")
        _positive(self, "webhook_poll_seconds", "webhook_backoff_cap_seconds")
        _non_negative(self, "webhook_backoff_seconds")
        if self.webhook_backoff_seconds > self.webhook_backoff_cap_seconds:
            raise ConfigError(
                "JOBWIRE_WEBHOOK_BACKOFF_SECONDS: expected at most "
                f"JOBWIRE_WEBHOOK_BACKOFF_CAP_SECONDS ({self.webhook_backoff_cap_seconds}), "
                f"got {self.webhook_backoff_seconds}"
            )
        if self.webhook_secret:
            decode_secret(self.webhook_secret, env_name("webhook_secret"))
        for cidr in self.webhook_allowed_cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ConfigError(
                    "JOBWIRE_WEBHOOK_ALLOWED_CIDRS: expected comma-separated networks such "
                    f"as 10.1.0.0/16 or fd00::/8, got {cidr!r}"
                ) from None
        if not 1 <= self.default_page_size <= self.max_page_size:
            raise ConfigError(
                f"JOBWIRE_DEFAULT_PAGE_SIZE: expected 1..{self.max_page_size}, "
                f"got {self.default_page_size}"
            )

    @property
    def limits(self) -> Limits:
        return Limits(
            result_bytes=self.max_result_bytes,
            output_bytes=self.max_output_bytes,
            progress_message_bytes=self.max_progress_message_bytes,
            traceback_bytes=self.max_traceback_bytes,
        )

    @property
    def heartbeat_seconds(self) -> float:
        return self.lease_seconds / 3

    @property
    def reap_every(self) -> float:
        return self.reap_interval_seconds or self.lease_seconds / 3

    @property
    def webhook_lease_seconds(self) -> float:
        """How long a sender holds a delivery: well past one attempt's timeout."""
        return self.webhook_timeout_seconds * 2 + 10

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            if name in env:
                values[f.name] = _parse(
                    name, env[name], f.default if f.default is not None else None, f.name
                )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


_BOOLS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _parse(env: str, raw: str, default: Any, name: str) -> Any:
    kind = type(default)
    if name == "process_concurrency":
        kind = int
    text = raw.strip()
    try:
        if kind is bool:
            return _BOOLS[text.lower()]
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
    except (KeyError, ValueError):
        expected = {bool: "true or false", int: "an integer", float: "a number"}.get(
            kind, kind.__name__
        )
        raise ConfigError(f"{env}: expected {expected}, got {raw!r}") from None
    return text


def _positive(settings: Settings, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        if not value > 0:  # also refuses NaN, which every comparison would let through
            raise ConfigError(f"{env_name(name)}: expected a positive number, got {value!r}")


def _non_negative(settings: Settings, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        if not value >= 0:
            raise ConfigError(f"{env_name(name)}: expected a number >= 0, got {value!r}")
