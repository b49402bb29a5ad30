"""`podium worker`: run a handler against a gateway."""

from __future__ import annotations

from typing import Annotated

import typer

from podium.cli.base import (
    app,
    err,
)


@app.command()
def worker(
    handler: Annotated[str | None, typer.Argument(help="MODULE:FUNCTION of the handler.")] = None,
    gateway: Annotated[str | None, typer.Option(envvar="PODIUM_GATEWAY")] = None,
    endpoint: Annotated[str | None, typer.Option(envvar="RUNPOD_ENDPOINT_ID")] = None,
    token: Annotated[str | None, typer.Option(envvar="RUNPOD_AI_API_KEY")] = None,
    template: Annotated[str | None, typer.Option(help="Built-in handler: sd15.")] = None,
    model: Annotated[str | None, typer.Option(envvar="PODIUM_SD_MODEL")] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Jobs at once (PODIUM_WORKER_CONCURRENCY).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Jobs per take (PODIUM_WORKER_BATCH_SIZE).")
    ] = None,
    ship_logs: Annotated[
        bool,
        typer.Option(
            "--ship-logs", help="Also send stdout and stderr to the gateway (`podium logs`)."
        ),
    ] = False,
) -> None:
    """Run a worker that pulls jobs from a gateway (or from RunPod, by RUNPOD_* env vars)."""
    from podium.worker.__main__ import start
    from podium.worker.config import ConfigError

    try:
        code = start(
            handler,
            gateway=gateway,
            endpoint=endpoint,
            token=token,
            template=template,
            model=model,
            concurrency=concurrency,
            batch_size=batch_size,
            ship_logs=ship_logs,
        )
    except ConfigError as exc:
        err.print(f"[red]error[/red]: {exc.message}")
        raise typer.Exit(2) from None
    raise typer.Exit(code)
