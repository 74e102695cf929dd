"""Runs inside a system's own virtualenv: pre-fill its queue, or time submit→start.

    python -m benchmarks.peers.driver SYSTEM prefill COUNT
    python -m benchmarks.peers.driver SYSTEM latency COUNT WARMUP

``latency`` submits one stamping job at a time with the system's normal single-job API,
takes the job's own clock stamp from the UDP packet its first statement sends, waits for
the job to finish with the system's own API, then submits the next. It prints one JSON
line: the submit→start times in milliseconds, warm-up excluded.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import socket
import sys
import time
from typing import Any


async def prefill(app: Any, count: int) -> None:
    done = app.prefill(count)
    if inspect.isawaitable(done):
        await done


async def latency(app: Any, count: int, warmup: int) -> list[float]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    async with app.Client() as client:
        for i in range(count + warmup):
            t0 = time.time()
            ref = await client.submit(port)
            packet = await asyncio.wait_for(loop.sock_recv(sock, 256), 30)
            await client.wait(ref)
            if i >= warmup:
                starts.append((float(packet.split()[-1]) - t0) * 1000)
    sock.close()
    return starts


def main() -> None:
    system, mode, *numbers = sys.argv[1:]
    app = importlib.import_module(f"benchmarks.peers.apps.{system}_app")
    if mode == "prefill":
        asyncio.run(prefill(app, int(numbers[0])))
    else:
        print(json.dumps(asyncio.run(latency(app, int(numbers[0]), int(numbers[1])))))


if __name__ == "__main__":
    main()
