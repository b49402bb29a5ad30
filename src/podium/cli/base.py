"""What every `podium` command shares: the Typer apps, the common options, the
consoles (data to stdout, diagnostics to stderr) and the client a command talks through."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from podium.client import PodiumClient, PodiumHTTPError
from podium.settings import ADMIN_KEY_FILE, default_data_dir

app = typer.Typer(
    help="Podium: self-hosted serverless inference, RunPod-compatible.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="API keys (admin).", no_args_is_help=True)
endpoints_app = typer.Typer(help="Endpoints (admin).", no_args_is_help=True)
volumes_app = typer.Typer(help="Network volumes (admin).", no_args_is_help=True)
registries_app = typer.Typer(help="Container registry credentials (admin).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(endpoints_app, name="endpoints")
snapshots_app = typer.Typer(
    help="Snapshot images for flashboot cold starts on the gateway's host (admin).",
    no_args_is_help=True,
)
app.add_typer(snapshots_app, name="snapshots")
app.add_typer(volumes_app, name="volumes")
app.add_typer(registries_app, name="registries")

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


# The CLI's tests drive it against an in-process gateway (tests/cli/conftest.py): a
# factory of clients for an API key. None, always outside those tests: `--url` over HTTP.
in_process: Callable[[str | None], httpx.Client] | None = None


def client_for(url: str, api_key: str | None) -> PodiumClient:
    if api_key is None:
        path = default_data_dir() / ADMIN_KEY_FILE
        if path.is_file():
            api_key = path.read_text().strip()
    http = in_process(api_key) if in_process is not None else None
    return PodiumClient(url, api_key, http=http)


def fail(exc: PodiumHTTPError) -> typer.Exit:
    err.print(f"[red]error {exc.status}[/red]: {exc.message}")
    return typer.Exit(1)


def call(client: PodiumClient, request: Callable[[], Any]) -> Any:
    """Run one client request; gateway errors and an unreachable gateway exit 1 with
    the reason on stderr."""
    try:
        return request()
    except PodiumHTTPError as exc:
        raise fail(exc) from None
    except httpx.HTTPError as exc:
        err.print(f"[red]error[/red]: cannot reach the gateway at {client.url}: {exc}")
        raise typer.Exit(1) from None


def resolve_names(client: PodiumClient, body: dict[str, Any]) -> dict[str, Any]:
    """`--volume` and `--registry` take a name or an id: a name becomes its id (the gateway
    keeps names unique). An unknown name exits 1 saying so."""
    kinds = (
        (
            "networkVolumeId",
            "vol_",
            "network volume",
            client.list_network_volumes,
            "networkVolumes",
        ),
        ("containerRegistryAuthId", "reg_", "registry", client.list_registries, "registries"),
    )
    for field, prefix, what, list_all, key in kinds:
        value = body.get(field)
        if not value or value.startswith(prefix):
            continue
        found = [r["id"] for r in call(client, list_all)[key] if r["name"] == value]
        if not found:
            err.print(f"[red]error[/red]: no {what} is named {value!r}")
            raise typer.Exit(1)
        body[field] = found[0]
    return body


def print_records(
    records: list[dict[str, Any]],
    json_out: bool,
    columns: tuple[str, ...],
    row: Callable[[dict[str, Any]], list[str]],
) -> None:
    """A list command's answer: the records as JSON (--json), else a table of `columns`."""
    if json_out:
        print(json.dumps(records))
        return
    table = Table(*columns)
    for record in records:
        table.add_row(*row(record))
    out.print(table)


def curl_command(base: str, key: str = "$PODIUM_API_KEY") -> str:
    from podium.gateway.quickstart import TUTORIAL_INPUT

    payload = json.dumps({"input": TUTORIAL_INPUT})
    return (
        f"curl -X POST {base}/runsync -H 'Content-Type: application/json' "
        f"-H \"Authorization: Bearer {key}\" -d '{payload}'"
    )
