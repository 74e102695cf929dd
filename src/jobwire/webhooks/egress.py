"""Where a webhook may go: public unicast addresses only, unless allowed in config.

Every address a host resolves to is checked, not just the first (a DNS answer holding
one public and one private address does not slip through), when the job is submitted
and again at every attempt. The attempt then connects to an address that was checked:
its URL carries the IP, while the ``Host`` header, TLS SNI and the certificate check
carry the original name (:func:`pinned_request`). Nothing resolves the name a second
time, so a DNS answer that changes between the check and the connection (rebinding)
cannot move the connection elsewhere.

Refused by default: every range of the IANA IPv4 and IPv6 Special-Purpose Address
Registries (:data:`SPECIAL_PURPOSE`: private, loopback, link-local — 169.254/16 is cloud
metadata —, carrier-grade NAT, IETF protocol assignments such as 192.0.0.8,
documentation, benchmarking, reserved…), multicast, and IPv6 forms embedding a refused
IPv4 address (NAT64, 6to4, Teredo); the standard library's flags then catch whatever
the table might miss. Unspecified (0.0.0.0, ::) and multicast addresses are never a
target. ``JOBWIRE_WEBHOOK_ALLOW_PRIVATE=true`` lifts the rest;
``JOBWIRE_WEBHOOK_ALLOWED_CIDRS`` lifts them for the listed networks only.
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

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class SpecialRange:
    network: IPNetwork
    name: str  # as the registry names it, shown in the refusal
    source: str  # the RFC that reserves it


def _ranges(*rows: tuple[str, str, str]) -> tuple[SpecialRange, ...]:
    return tuple(SpecialRange(ipaddress.ip_network(n), name, src) for n, name, src in rows)


# The IANA Special-Purpose Address Registries (iana-ipv4-special-registry and
# iana-ipv6-special-registry), every entry, plus multicast and IPv6's deprecated
# site-local block. Entries that are "globally reachable" there (anycast services such
# as PCP or TURN, AS112) are refused too: none is a webhook receiver. Left out, on
# purpose: 64:ff9b::/96 (NAT64) and 2002::/16 (6to4), which carry an IPv4 address that
# is checked instead (a public one may be reached through them).
SPECIAL_PURPOSE: tuple[SpecialRange, ...] = _ranges(
    ("0.0.0.0/8", "this-network", "RFC 791"),
    ("10.0.0.0/8", "private", "RFC 1918"),
    ("100.64.0.0/10", "carrier-grade NAT (shared address space)", "RFC 6598"),
    ("127.0.0.0/8", "loopback", "RFC 1122"),
    ("169.254.0.0/16", "link-local", "RFC 3927"),
    ("172.16.0.0/12", "private", "RFC 1918"),
    ("192.0.0.0/24", "IETF protocol assignments", "RFC 6890"),
    ("192.0.0.0/29", "IPv4 service continuity prefix", "RFC 7335"),
    ("192.0.0.8/32", "IPv4 dummy", "RFC 7600"),
    ("192.0.0.9/32", "port control protocol anycast", "RFC 7723"),
    ("192.0.0.10/32", "TURN anycast", "RFC 8155"),
    ("192.0.0.170/31", "NAT64/DNS64 discovery", "RFC 7050"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737"),
    ("192.31.196.0/24", "AS112-v4", "RFC 7535"),
    ("192.52.193.0/24", "AMT", "RFC 7450"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526"),
    ("192.168.0.0/16", "private", "RFC 1918"),
    ("192.175.48.0/24", "direct delegation AS112 service", "RFC 7534"),
    ("198.18.0.0/15", "benchmarking", "RFC 2544"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737"),
    ("224.0.0.0/4", "multicast", "RFC 5771"),
    ("240.0.0.0/4", "reserved", "RFC 1112"),
    ("255.255.255.255/32", "limited broadcast", "RFC 919"),
    ("::/128", "unspecified", "RFC 4291"),
    ("::1/128", "loopback", "RFC 4291"),
    ("::ffff:0:0/96", "IPv4-mapped", "RFC 4291"),
    ("64:ff9b:1::/48", "IPv4-IPv6 translation, local-use", "RFC 8215"),
    ("100::/64", "discard-only", "RFC 6666"),
    ("100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780"),
    ("2001::/23", "IETF protocol assignments", "RFC 2928"),
    ("2001::/32", "Teredo", "RFC 4380"),
    ("2001:1::1/128", "port control protocol anycast", "RFC 7723"),
    ("2001:1::2/128", "TURN anycast", "RFC 8155"),
    ("2001:1::3/128", "DNS-SD service registration protocol anycast", "RFC 9665"),
    ("2001:2::/48", "benchmarking", "RFC 5180"),
    ("2001:3::/32", "AMT", "RFC 7450"),
    ("2001:4:112::/48", "AS112-v6", "RFC 7535"),
    ("2001:10::/28", "deprecated ORCHID", "RFC 4843"),
    ("2001:20::/28", "ORCHIDv2", "RFC 7343"),
    ("2001:30::/28", "drone remote ID entity tags", "RFC 9374"),
    ("2001:db8::/32", "documentation", "RFC 3849"),
    ("2620:4f:8000::/48", "direct delegation AS112 service", "RFC 7534"),
    ("3fff::/20", "documentation", "RFC 9637"),
    ("5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602"),
    ("fc00::/7", "private (unique-local)", "RFC 4193"),
    ("fe80::/10", "link-local", "RFC 4291"),
    ("fec0::/10", "deprecated site-local", "RFC 3879"),
    ("ff00::/8", "multicast", "RFC 4291"),
)


def special_range(address: IPAddress) -> SpecialRange | None:
    """The most specific entry of :data:`SPECIAL_PURPOSE` holding ``address``."""
    found: SpecialRange | None = None
    for entry in SPECIAL_PURPOSE:
        if entry.network.version != address.version or address not in entry.network:
            continue
        if found is None or entry.network.prefixlen > found.network.prefixlen:
            found = entry
    return found


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
    special = special_range(address)
    if special is not None:
        return f"a {special.name} address ({special.network}, {special.source})"
    # The table is the rule; the standard library's flags are a second net under it.
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
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
