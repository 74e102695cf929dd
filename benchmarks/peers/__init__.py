"""jobwire against its peers on the same engine: drain and submit→start latency.

Each peer runs from its own virtualenv (``benchmarks/peers/.venv/<peer>``, made by
:mod:`benchmarks.peers.envs`), started with its own command-line tool at its defaults.
Nothing in this package imports jobwire except the jobwire app itself, so the same
driver runs inside every peer's virtualenv.
"""
