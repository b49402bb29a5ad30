"""`podium worker`: run a handler against a gateway.

Its options are declared once, by `python -m podium.worker` (podium/worker/__main__.py, an
entry point kept light for the workers' cold start): this command hands it every argument,
`--help` included."""

from __future__ import annotations

import typer

from podium.cli.base import app

__all__ = ["worker"]


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def worker(ctx: typer.Context) -> None:
    """Run a worker that pulls jobs from a gateway (or from RunPod, by RUNPOD_* env vars):
    `podium worker [MODULE:FUNCTION] [--gateway URL] [--endpoint EP] [--token T]
    [--template sd15] [--model M] [--concurrency N] [--batch-size N] [--ship-logs]`
    (`podium worker --help` for all)."""
    from podium.worker.__main__ import main

    raise typer.Exit(main(ctx.args, prog="podium worker"))
