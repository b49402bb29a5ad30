"""`podium ...`: a thin Typer CLI over the gateway, the worker runtime and the client.

Data goes to stdout (Rich, or JSON with --json); diagnostics to stderr; failures exit
non-zero.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from podium.client import PodiumClient, PodiumHTTPError
from podium.jobs import JobStatus

__all__ = ["app", "main"]

app = typer.Typer(help="Podium: self-hosted serverless inference, RunPod-compatible.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
keys_app = typer.Typer(help="API keys (admin).", no_args_is_help=True)
endpoints_app = typer.Typer(help="Endpoints (admin).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(endpoints_app, name="endpoints")

out = Console()
err = Console(stderr=True)

DEFAULT_URL = "http://127.0.0.1:8000"

UrlOpt = Annotated[str, typer.Option("--url", envvar="PODIUM_URL", help="Gateway URL.")]
KeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", envvar="PODIUM_API_KEY",
                 help="API key (default: DATA_DIR/admin.key when readable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _default_data_dir() -> Path:
    return Path(os.environ.get("PODIUM_DATA_DIR", Path.home() / ".podium"))


def _client(url: str, api_key: str | None) -> PodiumClient:
    if api_key is None:
        path = _default_data_dir() / "admin.key"
        if path.is_file():
            api_key = path.read_text().strip()
    return PodiumClient(url, api_key)


def _fail(exc: PodiumHTTPError) -> typer.Exit:
    err.print(f"[red]error {exc.status}[/red]: {exc.message}")
    return typer.Exit(1)


# --- serve -------------------------------------------------------------------------


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
    log_level: Annotated[str, typer.Option(envvar="PODIUM_LOG_LEVEL")] = "info",
) -> None:
    """Run the gateway (client API, worker API, admin API, reaper)."""
    import uvicorn

    from podium.clock import SystemClock
    from podium.gateway import create_app
    from podium.gateway.auth import ensure_admin_key
    from podium.settings import Settings
    from podium.store import open_store

    settings = Settings.from_env(
        host=host, port=port, data_dir=data_dir, store=store, public_url=public_url,
        insecure_no_auth=insecure_no_auth or None, ping_interval_ms=ping_interval_ms,
        take_hold_s=take_hold_s, retention_run_ms=retention_run_ms,
        retention_sync_ms=retention_sync_ms,
        allow_private_webhooks=allow_private_webhooks or None,
        rate_limits=False if no_rate_limits else None,
    )
    clock = SystemClock()
    if settings.insecure_no_auth:
        err.print("[yellow]warning[/yellow]: --insecure-no-auth: every request is accepted.")
    else:

        async def bootstrap() -> str | None:
            s = open_store(settings.store_url, clock)
            try:
                return await ensure_admin_key(s, settings.data_dir, clock.now())
            finally:
                await s.close()

        admin_key = asyncio.run(bootstrap())
        if admin_key:
            err.print(
                f"[bold]Admin API key[/bold] (shown once; also in "
                f"{settings.data_dir / 'admin.key'}):"
            )
            print(admin_key, flush=True)
    err.print(f"Podium gateway on {settings.base_url} (store: {settings.store_url})")
    uvicorn.run(
        create_app(settings, clock=clock), host=settings.host, port=settings.port,
        log_level=log_level, access_log=False,
    )


# --- worker ------------------------------------------------------------------------


@app.command()
def worker(
    handler: Annotated[str | None, typer.Argument(help="MODULE:FUNCTION of the handler.")] = None,
    gateway: Annotated[str | None, typer.Option(envvar="PODIUM_GATEWAY")] = None,
    endpoint: Annotated[str | None, typer.Option(envvar="RUNPOD_ENDPOINT_ID")] = None,
    token: Annotated[str | None, typer.Option(envvar="RUNPOD_AI_API_KEY")] = None,
    template: Annotated[str | None, typer.Option(help="Built-in handler: sd15.")] = None,
    model: Annotated[str | None, typer.Option(envvar="PODIUM_SD_MODEL")] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 1,
    batch_size: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Run a worker that pulls jobs from a gateway (or from RunPod, by RUNPOD_* env vars)."""
    from podium.worker.runtime import WorkerConfig, load_handler, run_worker

    config = WorkerConfig.from_env(
        gateway=gateway, endpoint_id=endpoint, token=token, concurrency=concurrency,
        batch_size=batch_size,
    )
    if template == "sd15":
        from podium.sd.handler import build

        fn: Any = build(model)
    elif template is not None:
        raise typer.BadParameter(f"Unknown template {template!r}; the built-in one is sd15.")
    elif handler:
        fn = load_handler(handler)
    else:
        raise typer.BadParameter("Give a handler as MODULE:FUNCTION, or --template sd15.")
    raise typer.Exit(run_worker(config, fn))


# --- client commands -----------------------------------------------------------------


def _parse_payload(payload: str) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter("must be a JSON object")
    return data if "input" in data else {"input": data}


def _progress_line(status: dict[str, Any]) -> str:
    line = status["status"]
    output = status.get("output")
    if status["status"] == JobStatus.IN_PROGRESS and isinstance(output, dict):
        if "step" in output and "steps" in output:
            line += f" step {output['step']}/{output['steps']}"
    return line


def _save_images(output: Any, path: Path) -> list[Path]:
    from podium.images import save_output_images

    return save_output_images(output, path)


@app.command()
def run(
    endpoint_id: str,
    payload: Annotated[str, typer.Argument(help='The input as JSON: {"prompt": ...}.')],
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result.")] = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="Save images here.")] = None,
    url: UrlOpt = DEFAULT_URL,
    api_key: KeyOpt = None,
) -> None:
    """Submit a job; with --wait (or --out) show live progress and print the result."""
    body = _parse_payload(payload)
    with _client(url, api_key) as client:
        try:
            job = client.run(endpoint_id, body)
            if not (wait or out_file):
                out.print_json(data=job)
                return
            with err.status(f"{job['id']}: IN_QUEUE") as spinner:
                final = client.wait(
                    endpoint_id, job["id"],
                    on_update=lambda s: spinner.update(f"{job['id']}: {_progress_line(s)}"),
                )
        except PodiumHTTPError as exc:
            raise _fail(exc) from None
    if out_file and final["status"] == JobStatus.COMPLETED:
        for saved in _save_images(final.get("output"), out_file):
            err.print(f"saved {saved}")
    else:
        out.print_json(data=final)
    if final["status"] != JobStatus.COMPLETED:
        raise typer.Exit(1)


@app.command()
def status(
    endpoint_id: str, job_id: str, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None
) -> None:
    """Show a job's status."""
    with _client(url, api_key) as client:
        try:
            out.print_json(data=client.status(endpoint_id, job_id))
        except PodiumHTTPError as exc:
            raise _fail(exc) from None


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option()] = "key",
    scope: Annotated[list[str] | None, typer.Option(help="read, run or admin.")] = None,
    endpoint: Annotated[list[str] | None, typer.Option(help="Limit to these endpoints.")] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: KeyOpt = None,
) -> None:
    """Create an API key (shown once)."""
    with _client(url, api_key) as client:
        try:
            key = client.create_key(name, scope or ["run"], endpoint or [])
        except PodiumHTTPError as exc:
            raise _fail(exc) from None
    if json_out:
        print(json.dumps(key))
    else:
        err.print(f"API key {key['id']} ({', '.join(key['scopes'])}); shown once:")
        print(key["key"])


@keys_app.command("list")
def keys_list(json_out: JsonOpt = False, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None) -> None:
    """List API keys."""
    with _client(url, api_key) as client:
        try:
            keys = client.list_keys()
        except PodiumHTTPError as exc:
            raise _fail(exc) from None
    if json_out:
        print(json.dumps(keys))
        return
    table = Table("id", "name", "scopes", "endpoints", "prefix", "revoked")
    for k in keys:
        table.add_row(k["id"], k["name"], ",".join(k["scopes"]), ",".join(k["endpoints"]) or "*",
                      k["prefix"] + "…", "yes" if k["revoked"] else "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None) -> None:
    """Revoke an API key."""
    with _client(url, api_key) as client:
        try:
            client.revoke_key(key_id)
        except PodiumHTTPError as exc:
            raise _fail(exc) from None
    err.print(f"revoked {key_id}")


@endpoints_app.command("create")
def endpoints_create(
    name: Annotated[str, typer.Option()],
    execution_timeout_ms: Annotated[int | None, typer.Option()] = None,
    retry_limit: Annotated[int | None, typer.Option()] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: KeyOpt = None,
) -> None:
    """Create an endpoint; prints its id and its worker token (shown once)."""
    spec: dict[str, Any] = {"name": name}
    if execution_timeout_ms is not None:
        spec["executionTimeoutMs"] = execution_timeout_ms
    if retry_limit is not None:
        spec["retryLimit"] = retry_limit
    with _client(url, api_key) as client:
        try:
            ep = client.create_endpoint(**spec)
        except PodiumHTTPError as exc:
            raise _fail(exc) from None
    if json_out:
        print(json.dumps(ep))
    else:
        out.print(f"endpoint [bold]{ep['id']}[/bold]  {ep['url']}")
        out.print(f"worker token (shown once): {ep['workerToken']}")


@endpoints_app.command("list")
def endpoints_list(
    json_out: JsonOpt = False, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None
) -> None:
    """List endpoints."""
    with _client(url, api_key) as client:
        try:
            eps = client.list_endpoints()
        except PodiumHTTPError as exc:
            raise _fail(exc) from None
    if json_out:
        print(json.dumps(eps))
        return
    table = Table("id", "name", "executionTimeoutMs", "retryLimit")
    for e in eps:
        table.add_row(e["id"], e["name"], str(e["executionTimeoutMs"]), str(e["retryLimit"]))
    out.print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)




if __name__ == "__main__":
    main()
