"""Egress rules: which targets a webhook may have, every resolved address checked, and
each attempt connected to an address that was checked. No test here sends traffic
anywhere but 127.0.0.1: refused targets are refused before any connection."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobwire.settings import Settings
from jobwire.store.base import DeliveryStatus, NewJob, Store
from jobwire.store.memory import MemoryStore
from jobwire.webhooks.egress import (
    SPECIAL_PURPOSE,
    EgressPolicy,
    EgressRefused,
    SpecialRange,
    UnresolvableHost,
    checked_addresses,
    pinned_request,
    refusal,
    special_range,
)
from jobwire.webhooks.outbox import Outbox
from tests.webhooks.app import FAST, new_secret
from tests.webhooks.receiver import Receiver

DEFAULT = EgressPolicy()

REFUSED_BY_DEFAULT = [
    ("127.0.0.1", "loopback"),
    ("10.0.0.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("::ffff:127.0.0.1", "IPv4-mapped"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fd00::1", "private"),
    ("192.168.1.1", "private"),
    ("172.16.0.1", "private"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),  # reserved for future use: not globally routable
    ("2002:a00:1::1", "embedding 10.0.0.1"),  # 6to4 around a private IPv4
]


class FakeDNS:
    """A resolver with scripted answers, one list per lookup (the last one repeats)."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return list(answer)


class BrokenDNS:
    async def __call__(self, host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(("address", "reason"), REFUSED_BY_DEFAULT)
async def test_a_non_public_address_is_refused_by_default(address: str, reason: str) -> None:
    with pytest.raises(EgressRefused, match=reason) as refused:
        await checked_addresses(address, 80, DEFAULT)
    assert refused.value.address == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["localhost", "2130706433", "0x7f.1", "127.1"])
async def test_names_and_odd_spellings_of_loopback_are_refused_after_resolving(
    host: str,
) -> None:
    with pytest.raises(EgressRefused, match="loopback"):
        await checked_addresses(host, 80, DEFAULT)


async def test_a_public_address_passes() -> None:
    assert await checked_addresses("93.184.216.34", 443, DEFAULT) == [
        ipaddress.ip_address("93.184.216.34")
    ]


async def test_every_resolved_address_is_checked_not_only_the_first() -> None:
    dns = FakeDNS(["93.184.216.34", "2606:2800:220:1::1", "10.1.2.3"])
    with pytest.raises(EgressRefused, match=r"hooks\.example\.test resolves to 10\.1\.2\.3"):
        await checked_addresses("hooks.example.test", 443, DEFAULT, dns)
    assert dns.lookups == [("hooks.example.test", 443)]


async def test_all_checked_addresses_are_returned_once_each_in_order() -> None:
    dns = FakeDNS(["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"])
    found = await checked_addresses("hooks.example.test", 443, DEFAULT, dns)
    assert [str(a) for a in found] == ["93.184.216.34", "2606:2800:220:1::1"]


async def test_a_name_that_does_not_resolve_is_reported_as_such() -> None:
    with pytest.raises(UnresolvableHost, match=r"cannot resolve hooks\.example\.test"):
        await checked_addresses("hooks.example.test", 443, DEFAULT, BrokenDNS())


async def test_allowing_private_targets_still_refuses_unspecified_and_multicast() -> None:
    allow = EgressPolicy(allow_private=True)
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1"):
        assert await checked_addresses(address, 80, allow) == [ipaddress.ip_address(address)]
    for address in ("0.0.0.0", "224.0.0.1", "ff02::1"):
        with pytest.raises(EgressRefused):
            await checked_addresses(address, 80, allow)


async def test_an_allow_list_admits_its_networks_only() -> None:
    policy = EgressPolicy.from_settings(Settings(webhook_allowed_cidrs=("10.1.0.0/16",)))
    assert await checked_addresses("10.1.2.3", 80, policy) == [ipaddress.ip_address("10.1.2.3")]
    with pytest.raises(EgressRefused, match="private"):
        await checked_addresses("10.2.0.1", 80, policy)
    with pytest.raises(EgressRefused, match="loopback"):
        await checked_addresses("127.0.0.1", 80, policy)


def test_a_pinned_request_goes_to_the_address_and_keeps_the_name_for_host_and_tls() -> None:
    url = httpx.URL("https://hooks.example.test:8443/in?x=1")
    request = pinned_request(url, ipaddress.ip_address("2606:2800:220:1::1"), content=b"{}")
    assert str(request.url) == "https://[2606:2800:220:1::1]:8443/in?x=1"
    assert request.headers["host"] == "hooks.example.test:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.test"
    plain_url = httpx.URL("http://hooks.example.test/in")
    plain = pinned_request(plain_url, ipaddress.ip_address("1.2.3.4"))
    assert (str(plain.url), plain.headers["host"]) == ("http://1.2.3.4/in", "hooks.example.test")
    assert "sni_hostname" not in plain.extensions


# -- at each attempt -------------------------------------------------------------------------


class Clock:
    """The memory store's clock, which a test moves on instead of waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(clock: Clock) -> AsyncIterator[Store]:
    opened = MemoryStore(clock=clock)
    await opened.open()
    yield opened
    await opened.close()


async def finished_job_with_webhook(store: Store, url: str) -> str:
    """A job that ended with a pending delivery to ``url`` (stored as a submit would)."""
    [enqueued] = await store.enqueue(
        [NewJob(id="job-1", job="add", args={}, options={"webhook": {"url": url, "events": None}})]
    )
    [claim] = await store.claim("w", ["default"], ["add"], 1, 60.0)
    await store.finish(claim.job.id, claim.token, 1)
    return enqueued.job.id


def settings(**overrides: Any) -> Settings:
    return Settings(**{**FAST, "webhook_secret": new_secret(), **overrides})


async def test_an_attempt_connects_to_the_checked_address_with_the_name_as_host(
    store: Store, receiver: Receiver
) -> None:
    dns = FakeDNS(["127.0.0.1"])
    job_id = await finished_job_with_webhook(store, receiver.url(host="hooks.example.test"))
    async with Outbox(store, settings(), resolver=dns) as outbox:
        assert await outbox.run_once() == 1
    [received] = receiver.received
    assert received.headers["host"] == f"hooks.example.test:{receiver.port}"
    assert dns.lookups == [("hooks.example.test", receiver.port)]
    [delivery] = await store.deliveries_for(job_id)
    assert delivery.status is DeliveryStatus.DELIVERED


async def test_each_attempt_checks_the_addresses_again_and_refuses_a_rebound_name(
    store: Store, receiver: Receiver, clock: Clock
) -> None:
    # The name first resolves to an allowed address, which answers 500; by the retry
    # it resolves to a private one, which is refused before anything connects.
    dns = FakeDNS(["127.0.0.1"], ["127.0.0.1", "10.0.0.1"])
    receiver.answer(500)
    job_id = await finished_job_with_webhook(store, receiver.url(host="hooks.example.test"))
    policy = settings(webhook_allow_private=False, webhook_allowed_cidrs=("127.0.0.0/8",))
    async with Outbox(store, policy, resolver=dns) as outbox:
        assert await outbox.run_once() == 1
        [first] = await store.deliveries_for(job_id)
        assert first.next_attempt_at is not None
        clock.now = first.next_attempt_at  # the retry is due
        assert await outbox.run_once() == 1
    [delivery] = await store.deliveries_for(job_id)
    assert (delivery.attempts, delivery.status) == (2, DeliveryStatus.PENDING)
    assert delivery.last_status_code is None
    assert delivery.last_error is not None
    assert "resolves to 10.0.0.1, which is a private address" in delivery.last_error
    assert len(receiver.received) == 1
    assert len(dns.lookups) == 2


async def test_a_target_refused_at_attempt_time_is_not_contacted(store: Store) -> None:
    job_id = await finished_job_with_webhook(store, "http://127.0.0.1:9/hook")
    strict = settings(webhook_allow_private=False, webhook_max_attempts=1)
    async with Outbox(store, strict) as outbox:
        assert await outbox.run_once() == 1
    [delivery] = await store.deliveries_for(job_id)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.last_error is not None and "loopback" in delivery.last_error


# -- HTTPS to a pinned address -----------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate (and its key) for hooks.example.test."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=hooks.example.test",
            "-addext",
            "subjectAltName=DNS:hooks.example.test",
            "-keyout",
            str(directory / "key.pem"),
            "-out",
            str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return directory


@pytest.fixture
async def tls_receiver(certificate: Path) -> AsyncIterator[tuple[Receiver, list[str | None]]]:
    """A receiver serving HTTPS as hooks.example.test; the SNI names it was sent."""
    names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")

    def heard(_sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = heard  # type: ignore[assignment]
    async with Receiver(tls=context) as receiver:
        yield receiver, names


def trusting(certificate: Path) -> httpx.AsyncHTTPTransport:
    """A transport that trusts the test certificate (and verifies names as usual)."""
    context = ssl.create_default_context(cafile=str(certificate / "cert.pem"))
    return httpx.AsyncHTTPTransport(verify=context)


async def test_an_https_attempt_to_the_pinned_address_sends_the_name_as_sni_and_verifies_it(
    store: Store, tls_receiver: tuple[Receiver, list[str | None]], certificate: Path
) -> None:
    receiver, names = tls_receiver
    job_id = await finished_job_with_webhook(store, receiver.url(host="hooks.example.test"))
    outbox = Outbox(
        store, settings(), resolver=FakeDNS(["127.0.0.1"]), transport=trusting(certificate)
    )
    async with outbox:
        assert await outbox.run_once() == 1
    [delivery] = await store.deliveries_for(job_id)
    assert delivery.status is DeliveryStatus.DELIVERED, delivery.last_error
    assert names == ["hooks.example.test"]
    assert receiver.received[0].headers["host"] == f"hooks.example.test:{receiver.port}"


async def test_an_https_attempt_is_refused_when_the_certificate_does_not_name_the_host(
    store: Store, tls_receiver: tuple[Receiver, list[str | None]], certificate: Path
) -> None:
    receiver, names = tls_receiver
    job_id = await finished_job_with_webhook(store, receiver.url(host="other.example.test"))
    outbox = Outbox(
        store,
        settings(webhook_max_attempts=1),
        resolver=FakeDNS(["127.0.0.1"]),
        transport=trusting(certificate),
    )
    async with outbox:
        assert await outbox.run_once() == 1
    [delivery] = await store.deliveries_for(job_id)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.last_error is not None and "certificate" in delivery.last_error.lower()
    assert names == ["other.example.test"] and receiver.received == []


@pytest.mark.parametrize(
    "entry", SPECIAL_PURPOSE, ids=[f"{e.network} {e.name}" for e in SPECIAL_PURPOSE]
)
async def test_every_special_purpose_range_of_the_iana_registries_is_refused(
    entry: SpecialRange,
) -> None:
    """Its first, middle and last address; each refused by default, and by the table
    itself, not only by the standard library's flags."""
    network = entry.network
    for offset in (0, network.num_addresses // 2, network.num_addresses - 1):
        address = network[offset]
        assert refusal(address) is not None, address
        with pytest.raises(EgressRefused):
            await checked_addresses(str(address), 443, DEFAULT)
        assert special_range(address) is not None, address


@pytest.mark.parametrize(
    ("address", "name"),
    [
        ("192.0.0.8", "IPv4 dummy"),  # not a flag of the standard library
        ("192.0.0.9", "port control protocol anycast"),
        ("192.31.196.1", "AS112-v4"),
        ("2001:1::3", "DNS-SD service registration protocol anycast"),
        ("3fff::1", "documentation"),
        ("5f00::1", "segment routing"),
    ],
)
async def test_special_purpose_addresses_are_refused_naming_their_range(
    address: str, name: str
) -> None:
    with pytest.raises(EgressRefused, match=name):
        await checked_addresses(address, 443, DEFAULT)


async def test_public_addresses_next_to_special_ranges_pass() -> None:
    for address in ("192.0.1.1", "198.20.0.1", "2606:4700::1", "2620:4f:8001::1"):
        assert await checked_addresses(address, 443, DEFAULT) == [ipaddress.ip_address(address)]
