"""`podium serve` and `podium up`: a gateway (and its fleet) in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from podium.cli.base import (
    FleetOpt,
    GpusOpt,
    NoSupervisorOpt,
    TickOpt,
    app,
    curl_command,
    err,
    out,
)
from podium.errors import PodiumError


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(envvar="PODIUM_HOST")] = None,
    port: Annotated[int | None, typer.Option(envvar="PODIUM_PORT")] = None,
    data_dir: Annotated[Path | None, typer.Option(envvar="PODIUM_DATA_DIR")] = None,
    store: Annotated[
        str | None, typer.Option(envvar="PODIUM_STORE", help="sqlite path or redis://...")
    ] = None,
    public_url: Annotated[str | None, typer.Option(envvar="PODIUM_PUBLIC_URL")] = None,
    insecure_no_auth: Annotated[
        bool, typer.Option("--insecure-no-auth", help="Accept every request (local dev only).")
    ] = False,
    ping_interval_ms: Annotated[int | None, typer.Option(envvar="PODIUM_PING_INTERVAL_MS")] = None,
    take_hold_s: Annotated[float | None, typer.Option(envvar="PODIUM_TAKE_HOLD_S")] = None,
    retention_run_ms: Annotated[int | None, typer.Option(envvar="PODIUM_RETENTION_RUN_MS")] = None,
    retention_sync_ms: Annotated[
        int | None, typer.Option(envvar="PODIUM_RETENTION_SYNC_MS")
    ] = None,
    allow_private_webhooks: Annotated[
        bool, typer.Option("--allow-private-webhooks", envvar="PODIUM_ALLOW_PRIVATE_WEBHOOKS")
    ] = False,
    no_rate_limits: Annotated[bool, typer.Option("--no-rate-limits")] = False,
    accept_empty_store: Annotated[
        bool,
        typer.Option(
            "--accept-empty-store",
            envvar="PODIUM_ACCEPT_EMPTY_STORE",
            help="Begin anew when the store lost its data (instead of refusing to start).",
        ),
    ] = False,
    no_supervisor: NoSupervisorOpt = False,
    supervisor_tick_s: TickOpt = None,
    gpus: GpusOpt = None,
    fleet_backend: FleetOpt = None,
    log_level: Annotated[str, typer.Option(envvar="PODIUM_LOG_LEVEL")] = "info",
) -> None:
    """Run the gateway (client, worker and admin APIs, reaper) and the supervisor.

    The supervisor starts the workers of endpoints that have a template, on this machine
    or (--fleet ray) across a Ray cluster; --no-supervisor for a gateway whose workers all
    run elsewhere."""
    from podium.settings import Settings

    settings = Settings.from_env(
        host=host,
        port=port,
        data_dir=data_dir,
        store=store,
        public_url=public_url,
        insecure_no_auth=insecure_no_auth or None,
        ping_interval_ms=ping_interval_ms,
        take_hold_s=take_hold_s,
        retention_run_ms=retention_run_ms,
        retention_sync_ms=retention_sync_ms,
        allow_private_webhooks=allow_private_webhooks or None,
        rate_limits=False if no_rate_limits else None,
        accept_empty_store=accept_empty_store or None,
    )
    fleet = _fleet_settings(
        enabled=False if no_supervisor else None,
        tick_s=supervisor_tick_s,
        gpus=gpus,
        backend=fleet_backend,
    )
    from podium.server import run_server

    run_server(settings, fleet, log_level)


def _fleet_settings(**overrides: Any) -> Any:
    from pydantic import ValidationError

    from podium.fleet.settings import FleetSettings

    try:
        return FleetSettings.from_env(**overrides)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        err.print(f"[red]error[/red]: invalid supervisor settings: {problems}")
        raise typer.Exit(2) from None


@app.command()
def up(
    host: Annotated[str | None, typer.Option(envvar="PODIUM_HOST")] = None,
    port: Annotated[int | None, typer.Option(envvar="PODIUM_PORT")] = None,
    data_dir: Annotated[Path | None, typer.Option(envvar="PODIUM_DATA_DIR")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            envvar="PODIUM_SD_MODEL",
            help="auto (default: SD 1.5 from the HF cache or hub; where there is none, "
            "`up` serves tiny and says so), tiny, sd15-random or a Hugging Face repo id.",
        ),
    ] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="gpuIds: '0,1' or '24GB'.")] = None,
    workers_min: Annotated[
        int | None, typer.Option(help="Default 1: the model stays loaded.")
    ] = None,
    workers_max: Annotated[
        int | None, typer.Option(help="Default: the number of GPUs (1 on a CPU-only machine).")
    ] = None,
    supervisor_tick_s: TickOpt = None,
    gpus: GpusOpt = None,
    log_level: Annotated[str, typer.Option(envvar="PODIUM_LOG_LEVEL")] = "info",
) -> None:
    """Gateway + supervisor + an `sd15` endpoint on the embedded store, in one command.

    Prints the URL, the endpoint id, an API key for it and a curl line to try. On the next
    start the endpoint named "sd15" and its key are reused."""
    from podium.endpoints import TEMPLATE_SD15
    from podium.fleet.gpus import discover
    from podium.gateway.quickstart import DEFAULT_NAME, ensure_sd15
    from podium.sd.weights import TINY_NOTE, sd15_available
    from podium.settings import Settings

    settings = Settings.from_env(host=host, port=port, data_dir=data_dir)
    fleet = _fleet_settings(enabled=True, tick_s=supervisor_tick_s, gpus=gpus)
    if settings.store and settings.store.startswith(("redis://", "rediss://")):
        err.print(
            "[yellow]note[/yellow]: `podium up` is meant for one machine; "
            f"using the store {settings.store} anyway."
        )
    changes: dict[str, Any] = {}
    if model is not None:
        changes["model"] = model
    if gpu is not None:
        changes["gpu_ids"] = gpu
    if workers_min is not None:
        changes["workers_min"] = workers_min
    if workers_max is not None:
        changes["workers_max"] = workers_max

    async def before(store: Any, clock: Any) -> None:
        wanted = dict(changes)
        existing = [
            e
            for e in await store.list_endpoints()
            if e.spec.name == DEFAULT_NAME and e.spec.template_id == TEMPLATE_SD15
        ]
        model_now = wanted.get("model", existing[0].spec.model if existing else None)
        if model_now in (None, "auto") and not sd15_available():
            wanted["model"] = "tiny"  # `auto` would refuse to start: say so, serve tiny
            err.print(f"[yellow]note[/yellow]: {TINY_NOTE}")
        if not existing:  # first start: defaults that suit this machine
            inventory = discover(fleet.gpus)
            if inventory.warning:
                err.print(f"[yellow]warning[/yellow]: {inventory.warning}")
            wanted.setdefault(
                "workers_max", max(1, len(inventory.gpus), wanted.get("workers_min", 0))
            )
            wanted.setdefault("workers_min", min(1, wanted["workers_max"]))
        try:
            quick = await ensure_sd15(store, settings.data_dir, clock.now(), wanted)
        except PodiumError as exc:
            err.print(f"[red]error[/red]: {exc.message}")
            raise typer.Exit(2) from None
        ep = quick.endpoint
        base = f"{settings.base_url}/v2/{ep.id}"
        s = ep.spec
        out.print(f"[bold]Podium is up[/bold] on {settings.base_url}", soft_wrap=True)
        out.print(
            f"  endpoint  {ep.id}  ({s.name}, model {s.model or 'auto'}, "
            f"{s.workers_min}–{s.workers_max} workers"
            f"{', GPUs ' + s.gpu_ids if s.gpu_ids else ''}"
            f"{', reused' if not quick.created else ''})",
            soft_wrap=True,
        )
        out.print(
            f"  API key   {quick.api_key}  (run scope, this endpoint; "
            f"{settings.data_dir / 'client.key'})",
            soft_wrap=True,
        )
        out.print(f"  admin key {settings.data_dir / 'admin.key'}", soft_wrap=True)
        out.print("Generate an image:", soft_wrap=True)
        print(curl_command(base, quick.api_key), flush=True)

    from podium.server import run_server

    run_server(settings, fleet, log_level, before=before)
