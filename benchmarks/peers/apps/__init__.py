"""One module per system: its no-op and stamping jobs, how to pre-fill its queue, and
how to submit one stamping job and wait for it with the system's own API.

Each module reads its connection from ``BENCH_URL`` (and Celery its result backend from
``BENCH_RESULT_URL``), set by the harness to an isolated database or Redis DB number.
"""
