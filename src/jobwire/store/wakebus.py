"""Cross-process wake-ups for processes sharing one SQLite file.

Each process that opens the store binds a Unix datagram socket in a directory derived
from the database's path; after each commit the writer sends its notices to every
socket there. A datagram that cannot be delivered (a peer's buffer is full, a peer died)
is dropped: wake-ups are hints and followers fall back to reading the log, so the cost
of a lost datagram is latency, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from jobwire.store.base import Notice, NoticeKind

log = logging.getLogger("jobwire.wakebus")

_MAX_DATAGRAM = 8192


def bus_directory(database: Path) -> Path:
    digest = hashlib.sha256(str(database.resolve()).encode()).hexdigest()[:24]
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return base / f"jobwire-{os.getuid()}" / digest


def encode(notices: Sequence[Notice]) -> list[bytes]:
    packets: list[bytes] = []
    current = bytearray()
    for notice in notices:
        line = f"{notice.kind.value} {notice.key}\n".encode()
        if current and len(current) + len(line) > _MAX_DATAGRAM:
            packets.append(bytes(current))
            current = bytearray()
        current += line
    if current:
        packets.append(bytes(current))
    return packets


def decode(packet: bytes) -> list[Notice]:
    notices = []
    for line in packet.decode(errors="replace").splitlines():
        kind, _, key = line.partition(" ")
        with contextlib.suppress(ValueError):
            notices.append(Notice(NoticeKind(kind), key))
    return notices


class WakeBus:
    def __init__(self, directory: Path, deliver: Callable[[list[Notice]], None]) -> None:
        self.directory = directory
        self._deliver = deliver
        self._inbox: socket.socket | None = None
        self._outbox: socket.socket | None = None
        self._path: Path | None = None
        self._peers: list[str] = []
        self._peers_stamp: int = -1
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._path = self.directory / f"{os.getpid()}-{os.urandom(4).hex()}.sock"
        inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        inbox.setblocking(False)
        inbox.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        inbox.bind(str(self._path))
        self._inbox = inbox
        outbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        outbox.setblocking(False)
        self._outbox = outbox
        self._loop = loop
        loop.add_reader(inbox.fileno(), self._on_readable)

    def stop(self) -> None:
        if self._loop is not None and self._inbox is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._inbox.fileno())
        for sock in (self._inbox, self._outbox):
            if sock is not None:
                sock.close()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        self._inbox = self._outbox = None

    def _on_readable(self) -> None:
        assert self._inbox is not None
        notices: list[Notice] = []
        while True:
            try:
                packet = self._inbox.recv(_MAX_DATAGRAM * 2)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            notices.extend(decode(packet))
        if notices:
            self._deliver(notices)

    def _refresh_peers(self) -> None:
        try:
            stamp = self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            self._peers = []
            return
        if stamp == self._peers_stamp:
            return
        own = str(self._path)
        self._peers = [
            entry.path
            for entry in os.scandir(self.directory)
            if entry.name.endswith(".sock") and entry.path != own
        ]
        self._peers_stamp = stamp

    def publish(self, notices: Sequence[Notice]) -> None:
        """Send notices to every other process; callable from any single thread."""
        outbox = self._outbox
        if outbox is None or not notices:
            return
        self._refresh_peers()
        if not self._peers:
            return
        packets = encode(notices)
        for peer in list(self._peers):
            for packet in packets:
                try:
                    outbox.sendto(packet, peer)
                except (BlockingIOError, InterruptedError):
                    break  # the peer is behind; it will read the log
                except (ConnectionRefusedError, FileNotFoundError):
                    # A peer that died without unlinking its socket.
                    with contextlib.suppress(OSError):
                        os.unlink(peer)
                    self._peers_stamp = -1
                    break
                except OSError as exc:
                    log.debug("wake-up to %s dropped: %s", peer, exc)
                    break
