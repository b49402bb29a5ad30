"""`podium ...`: a thin Typer CLI over the gateway, the worker runtime and the client,
one module per area (serve, worker, jobs, keys, endpoints, resources, logs; base: what
they share).

Data goes to stdout (Rich, or JSON with --json); diagnostics to stderr; failures exit
non-zero.
"""

from __future__ import annotations

import sys

from podium.cli.base import app

# Each area registers its commands on `app` when imported, in the order `--help` lists.
# isort: off
from podium.cli import serve, worker, jobs, keys, endpoints, resources, logs  # noqa: F401
# isort: on

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
