"""Private PostgreSQL and Redis servers that a test may stop and start at will.

The shared servers on 5432 and 6379 serve every other test and never go away; a test
that takes an engine away starts one of these instead: its own data directory in a
temporary directory, a free port on 127.0.0.1, and (PostgreSQL) a unix socket beside
its data. PostgreSQL refuses to run as root, so its files belong to the ``postgres``
user and its programs run as that user. When the programs are missing the test skips,
or fails under ``JOBWIRE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _missing(what: str) -> None:
    if os.environ.get("JOBWIRE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"JOBWIRE_REQUIRE_SERVICES=1 but {what}", pytrace=False)
    pytest.skip(what)


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class PrivatePostgres:
    """``initdb`` + ``pg_ctl`` in a temporary directory; ``url`` reaches it over TCP."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.bin = self._find_bin()

    @staticmethod
    def _find_bin() -> Path:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version_key)
        if not found:
            _missing("no PostgreSQL server programs under /usr/lib/postgresql/*/bin")
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _missing("no 'postgres' user to run a private PostgreSQL server as")
        return Path(found[-1]).parent

    def _as_postgres(self, *argv: str, timeout: float = 60.0) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}\n"
                f"{self.log.read_text() if self.log.exists() else ''}"
            )

    def init(self) -> None:
        postgres = pwd.getpwnam("postgres")
        self.sockets.mkdir()
        for path in (self.root, self.sockets):
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
        self._as_postgres(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "--no-instructions",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
            "-c max_connections=50 -c shared_buffers=16MB"
        )
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """A fast shutdown, as a restart does: sessions are ended, commits are kept."""
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60",
            "stop",
        )  # fmt: skip
        assert not _answers(self.port), "PostgreSQL still answers after pg_ctl stop"

    def kill(self) -> None:
        """Teardown: stop it whatever its state, without waiting for sessions."""
        pid_file = self.data / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parents[1].name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class PrivateRedis:
    """``redis-server --appendonly yes`` in a temporary directory, on a free port."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log = root / "redis.log"
        binary = shutil.which("redis-server")
        if binary is None:
            _missing("redis-server is not installed")
        self.binary = str(binary)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, within: float = 20.0) -> None:
        self.process = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.root), "--appendonly", "yes", "--appendfsync", "everysec",
                "--save", "", "--logfile", str(self.log), "--daemonize", "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + within
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server did not answer within {within} s")
            time.sleep(0.02)

    def _ready(self) -> bool:
        """Answers PING with PONG (not LOADING: the AOF has been read back)."""
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it: the append-only file is flushed."""
        process, self.process = self.process, None
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        assert not _answers(self.port), "Redis still answers after SIGTERM"

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def _running(server: PrivatePostgres | PrivateRedis) -> Iterator[None]:
    try:
        server.start()
        yield
    finally:
        server.kill()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    # Not under pytest's tmp_path: its parents are private to root, and the server
    # runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="jobwire-pg-"))
    try:
        server = PrivatePostgres(root, free_port())
        server.init()
        with _running(server):
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    root = Path(tempfile.mkdtemp(prefix="jobwire-redis-"))
    try:
        server = PrivateRedis(root, free_port())
        with _running(server):
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)
