"""Hosts of one test, each in a network namespace of its own, on a private bridge.

::

    root namespace (the test, the store's engine)      namespace jw-<run>-a    -b …
        bridge jwbr<run>  10.X.Y.1/24   ── jw<run>a ─── eth0 10.X.Y.11/24
                                        ── jw<run>b ─── eth0 10.X.Y.12/24

Only addresses of the test's own: a 10.X.Y.0/24 subnet not in use on this machine, on
interfaces that exist only while the test runs. Names carry a random run id, so tests
running at once never share a namespace, an interface or a subnet. :meth:`Network.cut`
cuts a host off (its link down, or its packets silently dropped: nothing is ever reset),
:meth:`Network.restore` puts it back.

Making namespaces needs root and ``ip`` (iproute2): without them the tests skip with the
reason, or fail when ``JOBWIRE_REQUIRE_SERVICES=1`` (as in CI).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import subprocess
from dataclasses import dataclass

import pytest

IP = shutil.which("ip") or "/usr/sbin/ip"


def _required() -> bool:
    return os.environ.get("JOBWIRE_REQUIRE_SERVICES", "") == "1"


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when services are required."""
    if _required():
        pytest.fail(f"{reason} and JOBWIRE_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(reason)


def ip(*args: str) -> str:
    done = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def why_no_namespaces() -> str | None:
    """None when this process can make network namespaces, else why not."""
    if not shutil.which("ip") and not os.path.exists(IP):
        return "network namespaces need iproute2's `ip`, which is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    return None


@dataclass(frozen=True)
class Host:
    name: str  # "a", "b"…
    namespace: str
    cable: str  # the root-side end of its veth pair
    address: str

    def argv(self, *command: str) -> list[str]:
        """``command`` run inside this host's namespace."""
        return [IP, "netns", "exec", self.namespace, *command]


class Network:
    """A bridge in the root namespace, and hosts plugged into it (see the module doc)."""

    def __init__(self) -> None:
        self.run = secrets.token_hex(3)
        self.bridge = f"jwbr{self.run}"
        self.subnet = _free_subnet()
        self.gateway = str(self.subnet.network_address + 1)  # the bridge's address
        self.hosts: dict[str, Host] = {}
        self._made_bridge = False

    def __enter__(self) -> Network:
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            self._made_bridge = True
            ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_host(self, name: str) -> Host:
        host = Host(
            name,
            namespace=f"jw-{self.run}-{name}",
            cable=f"jw{self.run}{name}",
            address=str(self.subnet.network_address + 11 + len(self.hosts)),
        )
        self.hosts[name] = host  # before anything is made: close() removes what was
        ip("netns", "add", host.namespace)
        ip("-n", host.namespace, "link", "set", "lo", "up")
        ip("link", "add", host.cable, "type", "veth", "peer", "name", "eth0",
           "netns", host.namespace)  # fmt: skip
        ip("link", "set", host.cable, "master", self.bridge, "up")
        prefix = f"{host.address}/{self.subnet.prefixlen}"
        ip("-n", host.namespace, "addr", "add", prefix, "dev", "eth0")
        ip("-n", host.namespace, "link", "set", "eth0", "up")
        return host

    def cut(self, host: Host, how: str) -> None:
        """Cut ``host`` off, ``how``:

        - ``"unplugged"``: its cable goes down; the host sees no carrier, so its new
          connections fail at once and its open ones wait;
        - ``"partitioned"``: its cable leaves the bridge (a switch failing past the host):
          the host's link stays up and every packet either way vanishes, so its
          connections, new and open, hang until TCP gives up.
        """
        if how == "unplugged":
            ip("link", "set", host.cable, "down")
        elif how == "partitioned":
            ip("link", "set", host.cable, "nomaster")
        else:
            raise ValueError(f"cut how? {how!r}")

    def restore(self, host: Host) -> None:
        ip("link", "set", host.cable, "master", self.bridge, "up")

    def close(self) -> None:
        """Remove every namespace and interface made; safe to call more than once."""
        for host in self.hosts.values():
            # Deleting the namespace destroys its veth end, and with it the pair.
            with contextlib.suppress(RuntimeError):
                ip("netns", "del", host.namespace)
            with contextlib.suppress(RuntimeError):
                ip("link", "del", host.cable)
        self.hosts.clear()
        if self._made_bridge:
            with contextlib.suppress(RuntimeError):
                ip("link", "del", self.bridge)
            self._made_bridge = False


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.X.Y.0/24 that no interface of this machine has an address in."""
    used = []
    for line in ip("-o", "-4", "addr", "show").splitlines():
        fields = line.split()
        if "inet" in fields:
            used.append(ipaddress.ip_interface(fields[fields.index("inet") + 1]).network)
    for _ in range(100):
        candidate = ipaddress.ip_network(
            f"10.{random.randrange(64, 255)}.{random.randrange(0, 256)}.0/24"
        )
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise RuntimeError("no free 10.X.Y.0/24 subnet for the test network")
