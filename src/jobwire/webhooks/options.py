"""The ``webhook`` option of a job, ``{"url": ..., "events": [...]}``, checked at submit.

Stored in the job's options as ``{"url": <normalised URL>, "events": [names] | None}``;
``None`` means the terminal events (succeeded, failed, cancelled). The store reads it
back with :func:`jobwire.store.base.webhook_target` whenever it appends an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jobwire.errors import ConfigError
from jobwire.model import EventType
from jobwire.webhooks.egress import EgressError, EgressPolicy, Resolver, checked_addresses

if TYPE_CHECKING:
    import httpx

    from jobwire.settings import Settings

MAX_URL_LENGTH = 2048
EVENT_NAMES = tuple(event.value for event in EventType)

NO_SECRET = (
    "webhooks are off: set JOBWIRE_WEBHOOK_SECRET to whsec_<base64 key> to sign them "
    "(Standard Webhooks)"
)


class WebhookRefused(ValueError):
    """The webhook option is invalid; ``loc`` is where, within the option."""

    def __init__(self, loc: Sequence[str | int], message: str, value: Any = None) -> None:
        self.loc = tuple(loc)
        self.value = value
        super().__init__(message)


async def check_webhook(
    raw: Any, settings: Settings, *, resolver: Resolver | None = None
) -> dict[str, Any]:
    """The option, validated and normalised; its host resolved and every address checked.

    Raises :class:`~jobwire.errors.ConfigError` when webhooks are not configured (no
    secret) and :class:`WebhookRefused` for a bad URL, a refused target or an unknown
    event name.
    """
    if not settings.webhook_secret:
        raise ConfigError(NO_SECRET)
    if not isinstance(raw, Mapping):
        raise WebhookRefused((), 'expected an object {"url": ..., "events"?: [...]}', raw)
    extra = sorted(set(raw) - {"url", "events"})
    if extra:
        raise WebhookRefused((extra[0],), "unknown field; expected url and events", extra[0])
    url = _check_url(raw.get("url"))
    events = _check_events(raw.get("events"))
    policy = EgressPolicy.from_settings(settings)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            await checked_addresses(url.host, port, policy, resolver)
    except TimeoutError:
        raise WebhookRefused(("url",), f"resolving {url.host} timed out", str(url)) from None
    except EgressError as exc:
        raise WebhookRefused(("url",), str(exc), str(url)) from None
    return {"url": str(url), "events": events}


def _check_url(value: Any) -> httpx.URL:
    import httpx  # here, not at import: jobwire loads in every job process and CLI call

    if not isinstance(value, str) or not value:
        raise WebhookRefused(("url",), "expected an http or https URL", value)
    if len(value) > MAX_URL_LENGTH:
        raise WebhookRefused(("url",), f"longer than {MAX_URL_LENGTH} characters", value)
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError) as exc:
        raise WebhookRefused(("url",), f"not a valid URL: {exc}", value) from None
    if url.scheme not in ("http", "https"):
        raise WebhookRefused(("url",), f"expected http or https, got {url.scheme or 'none'}", value)
    if not url.host:
        raise WebhookRefused(("url",), "the URL has no host", value)
    if url.userinfo:
        raise WebhookRefused(
            ("url",),
            "credentials in the URL are not accepted: it is shown in the job view",
            value,
        )
    return url.copy_with(fragment=None)


def _check_events(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise WebhookRefused(
            ("events",),
            "expected a non-empty list of event names, or no events for the terminal ones",
            value,
        )
    names: list[str] = []
    for index, name in enumerate(value):
        if name not in EVENT_NAMES:
            raise WebhookRefused(
                ("events", index),
                f"unknown event {name!r}; expected some of {', '.join(EVENT_NAMES)}",
                name,
            )
        if name not in names:
            names.append(name)
    return names
