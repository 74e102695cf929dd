"""(b) against its ceiling: the drain and the raw ceiling measured in turns.

On a machine whose speed moves from one minute to the next, a series of drains followed
by a series of ceilings compares two different machines; one run of each after the
other, repeated, compares like with like. Prints each pair and the ratio of the medians.

    python -m benchmarks.drain_ratio [--runs 7] [--jobs 20000]
"""

from __future__ import annotations

import argparse

from benchmarks import drain, raw_ceiling
from benchmarks._common import fresh_db, median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    drains, ceilings = [], []
    for run in range(args.runs):
        drains.append(drain.measure(fresh_db(), args.jobs))
        ceilings.append(raw_ceiling.measure(args.jobs))
        print(
            f"run {run + 1}: drain {drains[-1]:,.0f} jobs/s, raw ceiling {ceilings[-1]:,.0f} "
            f"lifecycles/s, {drains[-1] / ceilings[-1]:.1%}",
            flush=True,
        )
    print(
        f"medians of {args.runs}: drain {median(drains):,.0f} jobs/s, raw ceiling "
        f"{median(ceilings):,.0f} lifecycles/s, ratio {median(drains) / median(ceilings):.1%}"
    )


if __name__ == "__main__":
    main()
