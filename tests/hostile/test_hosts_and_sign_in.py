"""Without credentials only loopback and allowed host names are answered (DNS
rebinding); sign-in reads at most its limit and is rate-limited per client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.hostile.app import jobs
from tests.hostile.conftest import PREFIX, Serve, build

UI = PREFIX + "/ui"
KEYS = "alice-key=alice"


@pytest.fixture
def engine_url(sqlite_url: str) -> str:
    """Hosts and sign-in involve no store: one engine is enough."""
    return sqlite_url


async def status_for(client: httpx.AsyncClient, path: str, host: str) -> int:
    return (await client.get(path, headers={"Host": host})).status_code


async def test_a_keyless_api_answers_only_loopback_hosts(serve: Serve) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.url) as client:
        for host in ("localhost", "127.0.0.1:8000", "127.9.9.9", "[::1]:80", "app.localhost"):
            assert await status_for(client, PREFIX, host) == 200, host
        for host in ("attacker.example", "attacker.example:8000", "10.0.0.1", "localhost.evil"):
            answer = await client.get(PREFIX, headers={"Host": host})
            assert answer.status_code == 421, host
            assert "JOBWIRE_ALLOWED_HOSTS" in answer.json()["detail"]
            submit = await client.post(PREFIX, json={"job": "echo"}, headers={"Host": host})
            assert submit.status_code == 421
            assert await status_for(client, f"{PREFIX}/events", host) == 421
        # Probes name the pod's address: health tells nothing of anyone's jobs.
        assert await status_for(client, f"{PREFIX}/health/live", "10.0.0.1") == 200
        assert (await client.get(PREFIX)).json()["items"] == []


async def test_a_websocket_naming_another_host_is_refused(serve: Serve) -> None:
    server = await serve()
    with pytest.raises(InvalidStatus):
        async with connect(
            server.url.replace("http://", "ws://") + f"{PREFIX}/ws",
            additional_headers={"Host": "attacker.example"},
        ):
            pass


async def test_allowed_hosts_add_names_and_domains(serve: Serve) -> None:
    server = await serve(allowed_hosts=("jobs.internal", ".example.org"))
    async with httpx.AsyncClient(base_url=server.url) as client:
        for host in ("jobs.internal:8000", "example.org", "a.b.example.org", "localhost"):
            assert await status_for(client, PREFIX, host) == 200, host
        for host in ("badexample.org", "jobs.internal.evil", "example.org.evil"):
            assert await status_for(client, PREFIX, host) == 421, host
    wildcard = await serve(allowed_hosts=("*",))
    async with httpx.AsyncClient(base_url=wildcard.url) as client:
        assert await status_for(client, PREFIX, "anything.example") == 200


async def test_an_open_dashboard_answers_only_loopback_hosts(serve: Serve) -> None:
    server = await serve(dashboard_open=True, api_keys=KEYS)
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert await status_for(client, f"{UI}/", "localhost") == 200
        assert await status_for(client, f"{UI}/", "attacker.example") == 421
        assert await status_for(client, f"{UI}/api/jobs", "attacker.example") == 421
        # The API has keys here: whoever names any host still needs one.
        keyed = await client.get(
            PREFIX, headers={"Host": "jobs.example", "Authorization": "Bearer alice-key"}
        )
        assert keyed.status_code == 200


async def test_with_api_keys_any_host_may_be_named(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    async with httpx.AsyncClient(base_url=server.url) as client:
        bearer = {"Authorization": "Bearer alice-key", "Host": "jobs.example:443"}
        assert (await client.get(PREFIX, headers=bearer)).status_code == 200
        assert (
            await client.get(f"{UI}/login", headers={"Host": "jobs.example"})
        ).status_code == 200


async def test_sign_in_attempts_are_limited_per_client_with_a_429(serve: Serve) -> None:
    server = await serve(api_keys=KEYS, sign_in_attempts_per_minute=3)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(3):
            wrong = await client.post(f"{UI}/login", content="api_key=guess", headers=form)
            assert wrong.status_code == 401
        limited = await client.post(f"{UI}/login", content="api_key=alice-key", headers=form)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert "Too many sign-in attempts" in limited.text
        assert "set-cookie" not in limited.headers


class Counted:
    """A request body of ``chunks`` chunks of 64 KiB, counting how many were read."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield b"a" * 65536


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_huge_body_is_refused_before_it_is_read(tmp_path: Path, declared: bool) -> None:
    """200 MB at the sign-in form, the submit route and the purge route: 413 after at most
    the limit's worth of chunks (none when the length is declared)."""
    served = jobs.using(f"sqlite:///{tmp_path / 'j.db'}", api_keys=KEYS)
    transport = httpx.ASGITransport(app=build(served))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for path, content_type in (
            (f"{UI}/login", "application/x-www-form-urlencoded"),
            (PREFIX, "application/json"),
            (f"{UI}/api/purge", "application/json"),
        ):
            body = Counted(3200)
            headers = {"Content-Type": content_type, "Authorization": "Bearer alice-key"}
            if declared:
                headers["Content-Length"] = str(3200 * 65536)
            answer = await client.post(path, content=body, headers=headers)
            assert answer.status_code == 413, (path, answer.text)
            assert body.read <= (0 if declared else 17), (path, body.read)
