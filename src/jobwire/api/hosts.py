"""Which ``Host`` a request without credentials may name: DNS rebinding closed.

A server that asks for no credentials (no API keys, no auth dependency of the app; or
an open dashboard) trusts whoever reaches it. A page of any site can reach it too: it
points a name of its own at 127.0.0.1 once the page has loaded, and the browser then
sends the page's requests, as same-origin ones, to the local server, with the page's
name in ``Host``. Answering only requests that name a loopback host (``localhost``,
``*.localhost``, 127.0.0.0/8, ``::1``) or a host listed in ``JOBWIRE_ALLOWED_HOSTS``
leaves such a page nothing to talk to. Servers with credentials are not restricted:
the page has none to send.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from fastapi import HTTPException
from starlette.requests import HTTPConnection

from jobwire.settings import env_name

# 421 Misdirected Request: "this server is not the one for that name".
MISDIRECTED = 421


def host_name(header: str) -> str:
    """The name or address in a ``Host`` header, without port or brackets, lower-case."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    name, _, port = text.rpartition(":")
    if name and ((port.isascii() and port.isdigit()) or not port) and ":" not in name:
        return name
    return text


def is_loopback(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(header: str | None, allowed: Iterable[str]) -> bool:
    listed = {entry.strip().lower().rstrip(".") for entry in allowed}
    if "*" in listed:
        return True
    if not header:
        return False
    name = host_name(header).rstrip(".")
    if is_loopback(name) or name in listed:
        return True
    # ".example.com" allows example.com and every name under it.
    return any(e.startswith(".") and (name == e[1:] or name.endswith(e)) for e in listed)


def host_guard(allowed: tuple[str, ...]) -> Callable[[HTTPConnection], None]:
    """A dependency refusing (421) a request that names a host it may not."""

    def guard(connection: HTTPConnection) -> None:
        header = connection.headers.get("host")
        if not host_allowed(header, allowed):
            shown = (header or "")[:100]
            raise HTTPException(
                MISDIRECTED,
                f"host {shown if shown.isprintable() else repr(shown)} is not served without "
                f"credentials: use a loopback address, list it in {env_name('allowed_hosts')}, "
                f"or configure {env_name('api_keys')}",
            )

    return guard
