"""One follower process of the fan-out benchmark: many SSE followers over raw HTTP/1.1.

    python -m benchmarks.fanout.client HOST PORT JOB_ID[,JOB_ID...] --followers N

Opens N connections (spread over the jobs), each ``GET /jobs/{id}/events``; prints
``ready`` once every follower has the job's ``started`` event, then reads every stream
to its end and prints one JSON line: the delivery latencies of ``output`` events (receive
time minus the event's ``at``, in ms) and any follower whose log was not 1, 2, 3 … in
full. A raw asyncio client: httpx costs more CPU per event than the server being
measured, on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Follower(asyncio.Protocol):
    """One SSE stream, parsed in ``data_received``: no reader task to wake per event."""

    def __init__(self, host: str, port: int, job_id: str) -> None:
        self.host, self.port, self.job_id = host, port, job_id
        self.started = asyncio.Event()
        self.finished = asyncio.get_running_loop().create_future()
        self.latencies: list[float] = []
        self.last_output_at = 0.0
        self.seqs: list[int] = []
        self.last_type = ""
        self.error = ""
        self._head: bytes | None = None
        self._raw = b""  # chunked transfer coding, not yet decoded
        self._body = b""  # decoded, not yet a whole frame

    async def run(self, connecting: asyncio.Semaphore) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with connecting:
                transport, _ = await loop.create_connection(lambda: self, self.host, self.port)
                request = (
                    f"GET /jobs/{self.job_id}/events HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    "Accept: text/event-stream\r\n\r\n"
                )
                transport.write(request.encode())
            await self.finished
            transport.close()
        except Exception as exc:
            self.error = repr(exc)
        finally:
            self.started.set()

    def data_received(self, data: bytes) -> None:
        received = time.time()
        self._raw += data
        if self._head is None:
            head, sep, rest = self._raw.partition(b"\r\n\r\n")
            if not sep:
                return
            self._head, self._raw = head, rest
            status = head.split(b" ", 2)[1]
            if status != b"200":
                self._fail(f"status {status.decode()}")
                return
        # Decode whole chunks: "<hex size>\r\n<data>\r\n"; a 0-size chunk ends the body.
        raw, position = self._raw, 0
        while True:
            line_end = raw.find(b"\r\n", position)
            if line_end < 0:
                break
            size = int(raw[position:line_end].split(b";", 1)[0], 16)
            if size == 0:
                self._frames(received)
                if not self.finished.done():
                    self.finished.set_result(None)
                return
            if len(raw) < line_end + 2 + size + 2:
                break
            self._body += raw[line_end + 2 : line_end + 2 + size]
            position = line_end + 2 + size + 2
        self._raw = raw[position:]
        self._frames(received)

    def _frames(self, received: float) -> None:
        *blocks, self._body = self._body.split(b"\n\n")
        for block in blocks:
            self._frame(block, received)

    def _frame(self, block: bytes, received: float) -> None:
        kind = data = b""
        for line in block.split(b"\n"):
            name, _, value = line.partition(b": ")
            if name == b"id":
                self.seqs.append(int(value))
            elif name == b"event":
                kind = value
            elif name == b"data":
                data = value
        if kind == b"output":
            # "at" is the data's last field: cheaper to cut out than to parse it all.
            at = float(data[data.rindex(b'"at":') + 5 :].rstrip(b"}"))
            self.latencies.append((received - at) * 1000)
            self.last_output_at = received
        elif kind == b"started":
            self.started.set()
        if kind:
            self.last_type = kind.decode()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self._fail(f"connection lost: {exc!r}")

    def _fail(self, error: str) -> None:
        self.error = error
        self.started.set()
        if not self.finished.done():
            self.finished.set_result(None)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("jobs")
    parser.add_argument("--followers", type=int, required=True)
    parser.add_argument("--connecting", type=int, default=64, help="handshakes at once")
    args = parser.parse_args()
    raise_fd_limit()
    job_ids = args.jobs.split(",")
    followers = [
        Follower(args.host, args.port, job_ids[i % len(job_ids)]) for i in range(args.followers)
    ]
    connecting = asyncio.Semaphore(args.connecting)
    tasks = [asyncio.create_task(f.run(connecting)) for f in followers]
    for follower in followers:
        await follower.started.wait()
    print("ready", flush=True)
    cpu_before = time.process_time()
    await asyncio.gather(*tasks)
    cpu_seconds = time.process_time() - cpu_before
    incomplete = [
        {"job": f.job_id, "error": f.error, "events": len(f.seqs), "last": f.last_type}
        for f in followers
        if f.error or f.seqs != list(range(1, len(f.seqs) + 1)) or f.last_type != "succeeded"
    ]
    result = {
        "followers": len(followers),
        "latencies_ms": [round(x, 3) for f in followers for x in f.latencies],
        "by_output": [[round(x, 3) for x in f.latencies] for f in followers],
        "events": [len(f.seqs) for f in followers],
        "incomplete": incomplete[:20],
        "incomplete_count": len(incomplete),
        "cpu_s": cpu_seconds,
        "last_output_at": max(f.last_output_at for f in followers),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        import uvloop  # the client's own CPU is not what is measured: spend less of it
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
