"""Serve the fan-out app under cProfile: ``python -m benchmarks.fanout.profiled PORT OUT``.

Profiles CPU time (the machine may be busy) of the event loop's thread between SIGUSR1
(the followers are connected) and SIGUSR2 (the round is over), then writes OUT.
"""

from __future__ import annotations

import cProfile
import signal
import sys
import time

import uvicorn


def main() -> None:
    port, out = int(sys.argv[1]), sys.argv[2]
    profile = cProfile.Profile(time.thread_time)

    def stop(*_: object) -> None:
        profile.disable()
        profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
    signal.signal(signal.SIGUSR2, stop)
    config = uvicorn.Config(
        "benchmarks.fanout.app:app",
        host="127.0.0.1",
        port=port,
        backlog=4096,
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
