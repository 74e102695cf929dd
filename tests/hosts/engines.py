"""Private PostgreSQL and Redis servers that listen on the test network's bridge address.

The shared servers listen on 127.0.0.1, which a host in another network namespace
cannot reach; these are started for one test in a temporary directory, on a free port
of the bridge address only, and stopped (with their files removed) when it ends.
Durability is not under test here, so both run without syncing to disk.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Protocol


class Engine(Protocol):
    url: str

    def log(self) -> str: ...

    def stop(self) -> None: ...


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(address: str, port: int, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(OSError), socket.create_connection((address, port), 0.5):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} is not listening on {address}:{port}")
        time.sleep(0.05)


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's binaries, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def why_no_postgres() -> str | None:
    if postgres_bin() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    if shutil.which("runuser") is None:
        return "`runuser` is needed to run a private PostgreSQL as its own user"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` user to run a private PostgreSQL as"
    return None


def why_no_redis() -> str | None:
    if shutil.which("redis-server") is None:
        return "`redis-server` is not installed"
    return None


class PrivatePostgres:
    """``initdb`` + ``pg_ctl`` in a temporary directory owned by the postgres user;
    trust authentication for the bridge's subnet only."""

    def __init__(self, address: str, subnet: str) -> None:
        self.address = address
        self.bin = postgres_bin()
        assert self.bin is not None
        self.dir = Path(tempfile.mkdtemp(prefix="jobwire-pg-"))
        self.data = self.dir / "data"
        self.port = free_port(address)
        self.url = f"postgresql://postgres@{address}:{self.port}/postgres"
        self._started = False
        user = pwd.getpwnam("postgres")
        os.chown(self.dir, user.pw_uid, user.pw_gid)
        try:
            self._as_postgres(
                "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"
            )
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {subnet} trust\n")
            options = (
                f"-c listen_addresses={address} -p {self.port} -k {self.dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            self._as_postgres(
                "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options,
                "-w", "-t", "60", "start",
            )  # fmt: skip
            self._started = True
        except BaseException:
            self.stop()
            raise

    def _as_postgres(self, program: str, *args: str) -> None:
        assert self.bin is not None
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / program), *args],
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr[-2000:]}")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "log").read_text(errors="replace")
        return ""

    def stop(self) -> None:
        if self._started:
            self._started = False
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """``redis-server`` on the bridge address, keeping nothing on disk."""

    def __init__(self, address: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="jobwire-redis-"))
        self.port = free_port(address)
        self.url = f"redis://{address}:{self.port}/0"
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                address,
                # Bound to the test's own bridge only; protected mode would refuse the
                # namespaced hosts, which are not loopback clients.
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_listening(address, self.port, "the private redis-server")
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "log").read_text(errors="replace")
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
