"""A follower that reads nothing must cost the server a bounded amount of memory."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import httpx
import psutil

from tests.channels.conftest import PREFIX, Server, read_sse, submit

EVENTS = 100_000
PAD = 400  # bytes of padding in each output: the log is ~50 MB, too big to hide
# What the server may grow by while a stalled follower's job writes EVENTS outputs: the
# job's and the store's own buffers (~10-25 MiB measured), never the stream's backlog (a
# server that buffered it would hold ~100 MiB of events and frames).
RSS_BOUND = 64 * 1024 * 1024


class PeakRss:
    """Samples a process's resident set on a thread until stopped; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self._process = psutil.Process(pid)
        self._every = every
        self._stop = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def test_a_follower_that_reads_nothing_holds_server_memory_bounded_and_loses_nothing(
    servers: Callable[..., Server],
) -> None:
    server = servers()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        # Warm up every code path the measurement will cross, then take the baseline.
        warm = await submit(client, "emit", {"n": 2_000})
        await read_sse(client, f"{PREFIX}/{warm}/events")
        baseline = psutil.Process(server.pid).memory_info().rss

        job_id = await submit(client, "emit", {"n": EVENTS, "pad": PAD, "breather": 0.02})
        request = client.build_request("GET", f"{PREFIX}/{job_id}/events")
        stalled = await client.send(request, stream=True)  # headers read, body left unread
        try:
            assert stalled.status_code == 200
            with PeakRss(server.pid) as rss:
                # Long-poll until the job has written every event.
                async with asyncio.timeout(90):
                    while True:
                        view = await client.get(f"{PREFIX}/{job_id}", params={"wait": 30})
                        if view.json()["state"] == "succeeded":
                            break
            grown = rss.peak - baseline
            print(f"server RSS grew {grown / 2**20:.1f} MiB over {baseline / 2**20:.1f} MiB")
            assert grown < RSS_BOUND, f"server grew {grown / 2**20:.0f} MiB"

            # The stalled follower now reads: the whole log, in order, once.
            async with asyncio.timeout(90):
                frames = [frame async for frame in sse_frames(stalled)]
        finally:
            await stalled.aclose()

    assert [seq for seq, _ in frames] == list(range(1, EVENTS + 4))
    assert [kind for _, kind in frames[:2]] == ["queued", "started"]
    assert {kind for _, kind in frames[2:-1]} == {"output"}
    assert frames[-1][1] == "succeeded"


async def sse_frames(response: httpx.Response) -> AsyncIterator[tuple[int, str]]:
    """``(id, event)`` of each frame: a plain splitter, quicker than a full SSE parser
    over 100,000 events (the frames' fields are checked by the SSE tests)."""
    pending = b""
    async for chunk in response.aiter_raw():
        pending += chunk
        *blocks, pending = pending.split(b"\n\n")
        for block in blocks:
            fields = dict(
                line.split(b": ", 1) for line in block.split(b"\n") if not line.startswith(b":")
            )
            if b"id" in fields:
                yield int(fields[b"id"]), fields[b"event"].decode()
