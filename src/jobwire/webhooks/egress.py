"""Where a webhook may go: public unicast addresses only, unless allowed in config.

Every address a host resolves to is checked, not just the first (a DNS answer holding
one public and one private address does not slip through), when the job is submitted
and again at every attempt. The attempt then connects to an address that was checked:
its URL carries the IP, while the ``Host`` header, TLS SNI and the certificate check
carry the original name (:func:`pinned_request`). Nothing resolves the name a second
time, so a DNS answer that changes between the check and the connection (rebinding)
cannot move the connection elsewhere.

Refused by default: private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback,
link-local (169.254/16 — cloud metadata — and fe80::/10), carrier-grade NAT
(100.64/10), IPv4-mapped IPv6 (::ffff:0:0/96), IPv6 forms embedding a refused IPv4
(NAT64, 6to4, Teredo), reserved and other non-global ranges. Unspecified (0.0.0.0, ::)
and multicast addresses are never a target. ``JOBWIRE_WEBHOOK_ALLOW_PRIVATE=true`` lifts
the rest; ``JOBWIRE_WEBHOOK_ALLOWED_CIDRS`` lifts them for the listed networks only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from jobwire.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressError(ValueError):
    """A webhook target that cannot be used; ``host`` names it."""

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        super().__init__(message)


class EgressRefused(EgressError):
    """The host is, or resolves to, an address that is not allowed."""

    def __init__(self, host: str, address: IPAddress, reason: str) -> None:
        self.address = address
        self.reason = reason
        where = str(address) if host == str(address) else f"{host} resolves to {address}, which"
        super().__init__(
            host,
            f"{where} is {reason}; webhooks go to public addresses only "
            "unless JOBWIRE_WEBHOOK_ALLOW_PRIVATE or "
            "JOBWIRE_WEBHOOK_ALLOWED_CIDRS allows it",
        )


class UnresolvableHost(EgressError):
    """The host's name did not resolve (now)."""


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast target, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = refusal(embedded)
            if reason is not None:
                return f"an IPv6 address embedding {embedded} ({reason})"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a globally routable address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address that NAT64, 6to4 or Teredo forms carry (and would reach)."""
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    allow_private: bool = False
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        networks = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in settings.webhook_allowed_cidrs
        )
        return cls(settings.webhook_allow_private, networks)

    def check(self, address: IPAddress) -> str | None:
        """Why this policy refuses ``address``, or None when it may be a target."""
        if address.is_unspecified or address.is_multicast:
            return refusal(address)  # never a target, whatever the configuration
        if self.allow_private or any(address in network for network in self.allowed):
            return None
        return refusal(address)


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (IPv4 and IPv6)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def checked_addresses(
    host: str, port: int, policy: EgressPolicy, resolver: Resolver | None = None
) -> list[IPAddress]:
    """Resolve ``host`` and check every address; all of them, in order, or an error.

    Raises :class:`EgressRefused` when any address is refused, :class:`UnresolvableHost`
    when the name does not resolve.
    """
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            answers = await (resolver or system_resolver)(host, port)
        except OSError as exc:
            raise UnresolvableHost(host, f"cannot resolve {host}: {exc}") from None
        addresses = []
        for answer in answers:
            address = _literal(answer)
            if address is None:
                raise UnresolvableHost(host, f"{host} resolved to {answer!r}, not an address")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise UnresolvableHost(host, f"{host} resolved to no address")
    for address in addresses:
        reason = policy.check(address)
        if reason is not None:
            raise EgressRefused(host, address, reason)
    return addresses


def _literal(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def pinned_request(
    url: httpx.URL,
    address: IPAddress,
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    content: bytes = b"",
) -> httpx.Request:
    """A request for ``url`` that connects to ``address`` and to nothing else.

    The URL's host is replaced by the address, so the client resolves nothing; the
    ``Host`` header keeps the name the receiver expects, and for HTTPS the name is sent
    as SNI and the certificate is verified against it (httpcore's ``sni_hostname``).
    """
    import httpx  # the sender's dependency, loaded only where webhooks are sent

    target = url.copy_with(host=str(address))
    pinned_headers = {**(headers or {}), "Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    return httpx.Request(
        method, target, headers=pinned_headers, content=content, extensions=extensions
    )
