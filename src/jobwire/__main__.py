"""``python -m jobwire``: the same as the ``jobwire`` command."""

from jobwire.cli import main

main()
