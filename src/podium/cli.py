"""`podium ...`: a thin Typer CLI over the gateway, the worker runtime and the client.

Data goes to stdout (Rich, or JSON with --json); diagnostics to stderr; failures exit
non-zero.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from podium.client import PodiumClient, PodiumHTTPError
from podium.errors import PodiumError
from podium.jobs import JobStatus

__all__ = ["app", "main"]

app = typer.Typer(
    help="Podium: self-hosted serverless inference, RunPod-compatible.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
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
    typer.Option(
        "--api-key",
        envvar="PODIUM_API_KEY",
        help="API key (default: DATA_DIR/admin.key when readable).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
NoSupervisorOpt = Annotated[
    bool,
    typer.Option(
        "--no-supervisor",
        help="Start no local workers (env PODIUM_SUPERVISOR=false): workers run elsewhere.",
    ),
]
TickOpt = Annotated[
    float | None,
    typer.Option(
        "--supervisor-tick-s",
        help="Seconds between supervisor passes (env PODIUM_SUPERVISOR_TICK_S, default 0.5).",
    ),
]
FleetOpt = Annotated[
    str | None,
    typer.Option(
        "--fleet",
        help="Where workers run (env PODIUM_FLEET): 'local' (default), 'ray' (the Ray "
        "cluster of this machine, or RAY_ADDRESS), or 'ray://HOST:PORT' (Ray Client).",
    ),
]
GpusOpt = Annotated[
    str | None,
    typer.Option(
        "--gpus",
        help="GPU inventory instead of discovery (env PODIUM_GPUS): 'none', "
        "or 'index, name, MiB' entries separated by ';'.",
    ),
]


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
    from podium.server import serve as run_server

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
    from podium.endpoints.quickstart import DEFAULT_NAME, ensure_sd15
    from podium.fleet.gpus import discover
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
        print(_curl(base, quick.api_key), flush=True)

    from podium.server import serve as run_server

    run_server(settings, fleet, log_level, before=before)


# --- worker ------------------------------------------------------------------------


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
    if (
        status["status"] == JobStatus.IN_PROGRESS
        and isinstance(output, dict)
        and "step" in output
        and "steps" in output
    ):
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
                    endpoint_id,
                    job["id"],
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
def decode(
    json_file: Annotated[Path, typer.Argument(help="A saved status JSON.")] = Path("output.json"),
    image_file: Annotated[Path, typer.Argument(help="Where to write the PNG.")] = Path(
        "decoded_image.png"
    ),
) -> None:
    """Decode output[0]["image"] of a saved status JSON into a PNG (the tutorial's step)."""
    from podium.images import DecodeError, decode_status_file

    try:
        print(decode_status_file(json_file, image_file))
    except DecodeError as exc:
        print(str(exc))
        raise typer.Exit(1) from None


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
        table.add_row(
            k["id"],
            k["name"],
            ",".join(k["scopes"]),
            ",".join(k["endpoints"]) or "*",
            k["prefix"] + "…",
            "yes" if k["revoked"] else "",
        )
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
    table = Table("id", "name", "workers", "executionTimeoutMs", "retryLimit")
    for e in eps:
        table.add_row(
            e["id"], e["name"], _describe(e), str(e["executionTimeoutMs"]), str(e["retryLimit"])
        )
    out.print(table)


# --- deploy, endpoints, logs -----------------------------------------------------------

GpuOpt = Annotated[
    str | None, typer.Option("--gpu", help="gpuIds: GPU indices '0,1' or a minimum memory '24GB'.")
]
EnvOpt = Annotated[
    list[str] | None, typer.Option("--env", help="K=V, repeatable (update: replaces all).")
]


def _call(client: PodiumClient, request: Callable[[], Any]) -> Any:
    """Run one client request; gateway errors and an unreachable gateway exit 1 with
    the reason on stderr."""
    try:
        return request()
    except PodiumHTTPError as exc:
        raise _fail(exc) from None
    except httpx.HTTPError as exc:
        err.print(f"[red]error[/red]: cannot reach the gateway at {client.url}: {exc}")
        raise typer.Exit(1) from None


def _env_pairs(pairs: list[str] | None) -> dict[str, str] | None:
    if pairs is None:
        return None
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--env takes KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def _settings_body(**given: Any) -> dict[str, Any]:
    """CLI options (None: not given) -> the admin API's wire names."""
    wire = {
        "name": "name",
        "gpu": "gpuIds",
        "gpu_count": "gpuCount",
        "workers_min": "workersMin",
        "workers_max": "workersMax",
        "idle_timeout": "idleTimeout",
        "scaler_type": "scalerType",
        "scaler_value": "scalerValue",
        "model": "model",
        "command": "command",
        "flashboot": "flashboot",
        "execution_timeout_ms": "executionTimeoutMs",
        "retry_limit": "retryLimit",
    }
    body = {wire[k]: v for k, v in given.items() if k in wire and v is not None}
    env = _env_pairs(given.get("env"))
    if env is not None:
        body["env"] = env
    return body


def _curl(base: str, key: str = "$PODIUM_API_KEY") -> str:
    from podium.endpoints.quickstart import TUTORIAL_INPUT

    payload = json.dumps({"input": TUTORIAL_INPUT})
    return (
        f"curl -X POST {base}/runsync -H 'Content-Type: application/json' "
        f"-H \"Authorization: Bearer {key}\" -d '{payload}'"
    )


def _describe(ep: dict[str, Any]) -> str:
    if not ep.get("templateId"):
        return "workers started elsewhere"
    gpus = f", GPUs {ep['gpuIds']}" if ep.get("gpuIds") else ""
    what = ep["templateId"]
    if ep.get("model"):
        what += f" {ep['model']}"
    elif ep.get("command"):
        what += f": {ep['command']}"
    return f"{what}, {ep['workersMin']}–{ep['workersMax']} workers{gpus}"


@app.command()
def deploy(
    template: Annotated[str, typer.Argument(help="sd15, custom or a created template's id.")],
    name: Annotated[str | None, typer.Option(help="Default: the template's name.")] = None,
    gpu: GpuOpt = None,
    gpu_count: Annotated[int | None, typer.Option(help="GPUs per worker (default 1).")] = None,
    workers_min: Annotated[int | None, typer.Option(help="Default 0.")] = None,
    workers_max: Annotated[int | None, typer.Option(help="Default 3.")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="Seconds (default 5).")] = None,
    scaler_type: Annotated[
        str | None, typer.Option(help="QUEUE_DELAY (default) or REQUEST_COUNT.")
    ] = None,
    scaler_value: Annotated[
        float | None, typer.Option(help="Seconds (QUEUE_DELAY, default 4) or jobs per worker.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="sd15: the model (default auto).")] = None,
    command: Annotated[str | None, typer.Option(help="custom: the worker command.")] = None,
    env: EnvOpt = None,
    flashboot: Annotated[
        bool | None, typer.Option("--flashboot/--no-flashboot", help="Keep loaded workers warm.")
    ] = None,
    execution_timeout_ms: Annotated[int | None, typer.Option()] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: KeyOpt = None,
) -> None:
    """Create an endpoint whose workers the gateway's supervisor runs (Quick Deploy).

    Prints the endpoint id, its URLs and a ready curl line; --json prints the endpoint
    (with `id`, `url` and the worker token, shown once)."""
    body = _settings_body(
        name=name or template,
        gpu=gpu,
        gpu_count=gpu_count,
        workers_min=workers_min,
        workers_max=workers_max,
        idle_timeout=idle_timeout,
        scaler_type=scaler_type,
        scaler_value=scaler_value,
        model=model,
        command=command,
        env=env,
        flashboot=flashboot,
        execution_timeout_ms=execution_timeout_ms,
    )
    body["templateId"] = template
    with _client(url, api_key) as client:
        ep = _call(client, lambda: client.create_endpoint(**body))
    if json_out:
        print(json.dumps(ep))
        return
    base = ep["url"]
    out.print(f"Deployed endpoint [bold]{ep['id']}[/bold] ({_describe(ep)})", soft_wrap=True)
    for route in ("run", "runsync", "status/{job_id}", "health"):
        out.print(f"  {route.split('/')[0]:<8} {base}/{route}", soft_wrap=True)
    out.print("Try it (PODIUM_API_KEY: a key with the run scope):")
    print(_curl(base), flush=True)


@endpoints_app.command("show")
def endpoints_show(
    endpoint_id: str, json_out: JsonOpt = False, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None
) -> None:
    """Show an endpoint's settings and its supervised workers."""
    with _client(url, api_key) as client:
        ep = _call(client, lambda: client.get_endpoint(endpoint_id))
        health = _call(client, lambda: client.health(endpoint_id))
    if json_out:
        print(json.dumps({**ep, "health": health}))
        return
    table = Table("setting", "value", show_header=False)
    for key, value in ep.items():
        if key != "workers":
            table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    out.print(table)
    w = health["workers"]
    out.print("workers: " + ", ".join(f"{k} {v}" for k, v in w.items()))
    if ep.get("workers"):
        wt = Table("worker", "phase", "gpus", "pid", "restarts", "reason")
        for x in ep["workers"]:
            wt.add_row(
                x["id"],
                x["phase"],
                ",".join(map(str, x["gpus"])) or "-",
                str(x["pid"] or "-"),
                str(x["restarts"]),
                x["reason"] or "",
            )
        out.print(wt)


@endpoints_app.command("update")
def endpoints_update(
    endpoint_id: str,
    name: Annotated[str | None, typer.Option()] = None,
    gpu: GpuOpt = None,
    gpu_count: Annotated[int | None, typer.Option()] = None,
    workers_min: Annotated[int | None, typer.Option()] = None,
    workers_max: Annotated[int | None, typer.Option()] = None,
    idle_timeout: Annotated[float | None, typer.Option()] = None,
    scaler_type: Annotated[str | None, typer.Option()] = None,
    scaler_value: Annotated[float | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    command: Annotated[str | None, typer.Option()] = None,
    env: EnvOpt = None,
    flashboot: Annotated[bool | None, typer.Option("--flashboot/--no-flashboot")] = None,
    execution_timeout_ms: Annotated[int | None, typer.Option()] = None,
    retry_limit: Annotated[int | None, typer.Option()] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: KeyOpt = None,
) -> None:
    """Change an endpoint's settings (only the options given)."""
    body = _settings_body(
        name=name,
        gpu=gpu,
        gpu_count=gpu_count,
        workers_min=workers_min,
        workers_max=workers_max,
        idle_timeout=idle_timeout,
        scaler_type=scaler_type,
        scaler_value=scaler_value,
        model=model,
        command=command,
        env=env,
        flashboot=flashboot,
        execution_timeout_ms=execution_timeout_ms,
        retry_limit=retry_limit,
    )
    if not body:
        raise typer.BadParameter("give at least one setting to change (see --help)")
    with _client(url, api_key) as client:
        ep = _call(client, lambda: client.update_endpoint(endpoint_id, **body))
    if json_out:
        print(json.dumps(ep))
    else:
        out.print(f"updated [bold]{ep['id']}[/bold] ({_describe(ep)})")


@endpoints_app.command("delete")
def endpoints_delete(endpoint_id: str, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None) -> None:
    """Delete an endpoint: its queued jobs are dropped and its workers stopped."""
    with _client(url, api_key) as client:
        _call(client, lambda: client.delete_endpoint(endpoint_id))
    err.print(f"deleted {endpoint_id}")


def _log_line(line: dict[str, Any]) -> str:
    jobs = f" [{','.join(line['jobs'])}]" if line["jobs"] else ""
    return f"{line['time']} {line['workerId']}{jobs} | {line['text']}"


@app.command()
def logs(
    endpoint_id: str,
    tail: Annotated[
        int, typer.Option("--tail", "-n", min=0, max=10_000, help="Lines to show first.")
    ] = 100,
    worker: Annotated[str | None, typer.Option(help="Only this worker's lines.")] = None,
    job: Annotated[str | None, typer.Option(help="Only lines written while this job ran.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C ends).")
    ] = False,
    json_out: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: KeyOpt = None,
) -> None:
    """Print an endpoint's worker logs (stdout and stderr): `TIME WORKER [JOBS] | TEXT`."""
    with _client(url, api_key) as client:
        if follow:
            _call(client, lambda: _follow(client, endpoint_id, tail, worker, job, json_out))
            return
        body = _call(client, lambda: client.endpoint_logs(endpoint_id, tail, worker, job))
    if json_out:
        print(json.dumps(body))
        return
    if not body["lines"]:
        err.print(f"no log lines for {endpoint_id}{' that match' if worker or job else ''} yet")
    for line in body["lines"]:
        print(_log_line(line))
    sys.stdout.flush()


def _follow(
    client: PodiumClient,
    endpoint_id: str,
    tail: int,
    worker: str | None,
    job: str | None,
    json_out: bool,
) -> None:
    for item in client.follow_logs(endpoint_id, tail, worker, job):
        if "error" in item:
            err.print(f"[red]error[/red]: {item['error']}")
            raise typer.Exit(1)
        if "heartbeat" in item:
            continue
        print(json.dumps(item) if json_out else _log_line(item), flush=True)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
