"""`podium deploy` and `podium endpoints ...` (admin)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from podium.cli.base import (
    DEFAULT_URL,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    app,
    call,
    client_for,
    curl_command,
    endpoints_app,
    err,
    out,
    resolve_names,
)


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
    with client_for(url, api_key) as client:
        ep = call(client, lambda: client.create_endpoint(**spec))
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
    with client_for(url, api_key) as client:
        eps = call(client, client.list_endpoints)
    if json_out:
        print(json.dumps(eps))
        return
    table = Table("id", "name", "workers", "executionTimeoutMs", "retryLimit")
    for e in eps:
        table.add_row(
            e["id"], e["name"], _describe(e), str(e["executionTimeoutMs"]), str(e["retryLimit"])
        )
    out.print(table)


GpuOpt = Annotated[
    str | None, typer.Option("--gpu", help="gpuIds: GPU indices '0,1' or a minimum memory '24GB'.")
]
ImageOpt = Annotated[
    str | None,
    typer.Option("--image", help="imageName: each worker is a container of this image."),
]
VolumeOpt = Annotated[
    str | None,
    typer.Option(
        "--volume", help="A network volume (name or id): mounted at /runpod-volume in each worker."
    ),
]
RegistryOpt = Annotated[
    str | None,
    typer.Option("--registry", help="Registry credentials (name or id) to pull --image with."),
]
TypeOpt = Annotated[
    str | None,
    typer.Option(
        "--type",
        help="QUEUE (jobs: /run, the default) or LOAD_BALANCER (requests go to the workers' "
        "own HTTP server, PORT and /ping).",
        case_sensitive=False,
    ),
]
EnvOpt = Annotated[
    list[str] | None, typer.Option("--env", help="K=V, repeatable (update: replaces all).")
]


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
        "image": "imageName",
        "volume": "networkVolumeId",
        "registry": "containerRegistryAuthId",
        "flashboot": "flashboot",
        "execution_timeout_ms": "executionTimeoutMs",
        "retry_limit": "retryLimit",
        "type": "type",
    }
    body = {wire[k]: v for k, v in given.items() if k in wire and v is not None}
    if "type" in body:
        body["type"] = str(body["type"]).upper()
    env = _env_pairs(given.get("env"))
    if env is not None:
        body["env"] = env
    return body


def _image_name(image: str | None) -> str:
    """An endpoint's default name from its image: `team/worker:1.2` -> `worker`."""
    last = (image or "").rsplit("/", 1)[-1]
    return last.split("@", 1)[0].split(":", 1)[0][:191] or "endpoint"


def _describe(ep: dict[str, Any]) -> str:
    if not ep.get("templateId") and not ep.get("imageName"):
        return "workers started elsewhere"
    gpus = f", GPUs {ep['gpuIds']}" if ep.get("gpuIds") else ""
    what = ep.get("templateId") or "image"
    if ep.get("imageName"):
        what += f" {ep['imageName']}"
    if ep.get("model"):
        what += f" {ep['model']}"
    elif ep.get("command"):
        what += f": {ep['command']}"
    if ep.get("type") == "LOAD_BALANCER":
        what = f"load balancer, {what}"
    return f"{what}, {ep['workersMin']}–{ep['workersMax']} workers{gpus}"


@app.command()
def deploy(
    template: Annotated[
        str | None,
        typer.Argument(help="sd15, custom or a created template's id (none with --image)."),
    ] = None,
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
    command: Annotated[
        str | None, typer.Option(help="custom: the worker command; with --image: its CMD.")
    ] = None,
    image: ImageOpt = None,
    volume: VolumeOpt = None,
    registry: RegistryOpt = None,
    endpoint_type: TypeOpt = None,
    env: EnvOpt = None,
    flashboot: Annotated[
        bool | None, typer.Option("--flashboot/--no-flashboot", help="Keep loaded workers warm.")
    ] = None,
    execution_timeout_ms: Annotated[int | None, typer.Option()] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: KeyOpt = None,
) -> None:
    """Create an endpoint whose workers the gateway's supervisor runs (Quick Deploy):
    processes of a template, or containers of an --image (RunPod's worker images run as
    they are).

    Prints the endpoint id, its URLs and a ready curl line; --json prints the endpoint
    (with `id`, `url` and the worker token, shown once)."""
    if template is None and image is None:
        raise typer.BadParameter("give a TEMPLATE (sd15, custom, a template's id) or --image")
    body = _settings_body(
        name=name or template or _image_name(image),
        gpu=gpu,
        gpu_count=gpu_count,
        workers_min=workers_min,
        workers_max=workers_max,
        idle_timeout=idle_timeout,
        scaler_type=scaler_type,
        scaler_value=scaler_value,
        model=model,
        command=command,
        image=image,
        volume=volume,
        registry=registry,
        type=endpoint_type,
        env=env,
        flashboot=flashboot,
        execution_timeout_ms=execution_timeout_ms,
    )
    if template is not None:
        body["templateId"] = template
    with client_for(url, api_key) as client:
        resolve_names(client, body)
        ep = call(client, lambda: client.create_endpoint(**body))
    if json_out:
        print(json.dumps(ep))
        return
    base = ep["url"]
    out.print(f"Deployed endpoint [bold]{ep['id']}[/bold] ({_describe(ep)})", soft_wrap=True)
    if ep.get("type") == "LOAD_BALANCER":
        out.print(f"  requests go to its workers' own paths: {base}/<path>", soft_wrap=True)
        out.print("Try it (PODIUM_API_KEY: a key with the run scope):")
        print(f'curl -H "Authorization: Bearer $PODIUM_API_KEY" {base}/ping', flush=True)
        return
    for route in ("run", "runsync", "status/{job_id}", "health"):
        out.print(f"  {route.split('/')[0]:<8} {base}/{route}", soft_wrap=True)
    out.print("Try it (PODIUM_API_KEY: a key with the run scope):")
    print(curl_command(base), flush=True)


@endpoints_app.command("show")
def endpoints_show(
    endpoint_id: str, json_out: JsonOpt = False, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None
) -> None:
    """Show an endpoint's settings and its supervised workers."""
    with client_for(url, api_key) as client:
        ep = call(client, lambda: client.get_endpoint(endpoint_id))
        health = call(client, lambda: client.health(endpoint_id))
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


_BLOCKS = "▁▂▃▄▅▆▇█"


def spark(values: list[float | None], width: int = 72) -> str:
    """A series as one line of blocks (a space where it has no value), at most `width`
    wide: a longer series shows the peak of each run of points."""
    if len(values) > width:
        per = -(-len(values) // width)
        values = [
            max((v for v in values[i : i + per] if v is not None), default=None)
            for i in range(0, len(values), per)
        ]
    top = max((v for v in values if v is not None), default=0) or 1
    return "".join(" " if v is None else _BLOCKS[min(7, int(v / top * 7.999))] for v in values)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f} ms"


@endpoints_app.command("metrics")
def endpoints_metrics(
    endpoint_id: str,
    interval: Annotated[
        str, typer.Option(help="1h, 6h, 1d or 1w: the last hour, 6 hours, day or week.")
    ] = "1h",
    json_out: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: KeyOpt = None,
) -> None:
    """The endpoint's metrics over an interval (the console's Metrics tab): totals,
    percentiles and each series as a line of blocks (read scope)."""
    with client_for(url, api_key) as client:
        m = call(client, lambda: client.metrics(endpoint_id, interval))
    if json_out:
        print(json.dumps(m))
        return
    t = m["totals"]
    out.print(
        f"[bold]{endpoint_id}[/bold], {m['from']} to {m['to']}, "
        f"one point per {m['stepSeconds'] // 60} min"
    )
    table = Table("series", "total / P70 · P90 · P98", "over the interval")
    for key, label in (
        ("total", "requests"),
        ("completed", "completed"),
        ("failed", "failed"),
        ("retried", "retried"),
    ):
        table.add_row(label, str(t["requests"][key]), spark(m["requests"][key]))
    for key, label in (
        ("executionMs", "execution time"),
        ("delayMs", "delay time"),
        ("coldStartMs", "cold start time"),
    ):
        p = t[key]
        table.add_row(
            label, " · ".join(_ms(p[q]) for q in ("p70", "p90", "p98")), spark(m[key]["p90"])
        )
    table.add_row("cold starts", str(t["coldStarts"]["total"]), spark(m["coldStarts"]["total"]))
    table.add_row("webhooks sent", str(t["webhooks"]["sent"]), spark(m["webhooks"]["sent"]))
    for state, values in m["workers"].items():
        now = next((v for v in reversed(values) if v is not None), None)
        table.add_row(f"workers {state}", "-" if now is None else str(now), spark(values))
    out.print(table)


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
    image: ImageOpt = None,
    volume: VolumeOpt = None,
    registry: RegistryOpt = None,
    endpoint_type: TypeOpt = None,
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
        image=image,
        volume=volume,
        registry=registry,
        type=endpoint_type,
        env=env,
        flashboot=flashboot,
        execution_timeout_ms=execution_timeout_ms,
        retry_limit=retry_limit,
    )
    if not body:
        raise typer.BadParameter("give at least one setting to change (see --help)")
    with client_for(url, api_key) as client:
        resolve_names(client, body)
        ep = call(client, lambda: client.update_endpoint(endpoint_id, **body))
    if json_out:
        print(json.dumps(ep))
    else:
        out.print(f"updated [bold]{ep['id']}[/bold] ({_describe(ep)})")


@endpoints_app.command("delete")
def endpoints_delete(endpoint_id: str, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None) -> None:
    """Delete an endpoint: its queued jobs are dropped and its workers stopped."""
    with client_for(url, api_key) as client:
        call(client, lambda: client.delete_endpoint(endpoint_id))
    err.print(f"deleted {endpoint_id}")
