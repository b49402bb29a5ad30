"""`podium snapshots ...`, `podium volumes ...` and `podium registries ...` (admin of the whole
gateway): the snapshot images flashboot workers are restored from (docs/snapshots.md), the
network volumes image workers mount at /runpod-volume and the credentials private images
are pulled with, over RunPod's REST v2 routes."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from podium.cli.base import (
    DEFAULT_URL,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    call,
    client_for,
    err,
    out,
    print_records,
    registries_app,
    snapshots_app,
    volumes_app,
)


@snapshots_app.command("list")
def snapshots_list(
    json_out: JsonOpt = False, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None
) -> None:
    """The images the gateway's local fleet keeps to restore flashboot workers from."""
    with client_for(url, api_key) as client:
        found = call(client, client.list_snapshots)
    if not found["enabled"] and not json_out:
        err.print("snapshots are off on this gateway (no CRIU >= 4, not root, or turned off)")
    print_records(
        found["snapshots"],
        json_out,
        ("key", "endpoint", "MB", "restores", "dump (s)"),
        lambda s: [
            s["key"],
            s["endpointId"],
            f"{s['bytes'] / 2**20:.0f}",
            str(s["restores"]),
            f"{s['dumpSeconds']:.2f}",
        ],
    )


@snapshots_app.command("delete")
def snapshots_delete(key: str, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None) -> None:
    """Delete one image: its endpoint's next cold start runs the program (and takes a new
    snapshot)."""
    with client_for(url, api_key) as client:
        call(client, lambda: client.delete_snapshot(key))
    err.print(f"deleted {key}")


@volumes_app.command("create")
def volumes_create(
    name: Annotated[str, typer.Argument(help="A name for people.")],
    size: Annotated[
        int, typer.Option(help="GB, 10-4096 (RunPod's range; a label: no quota here).")
    ] = 10,
    data_center: Annotated[str, typer.Option(help="RunPod's dataCenterId; kept as a label.")] = (
        "local"
    ),
    json_out: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: KeyOpt = None,
) -> None:
    """Create a network volume: a directory under the gateway's PODIUM_VOLUME_ROOT that
    the workers of endpoints naming it see at /runpod-volume."""
    with client_for(url, api_key) as client:
        volume = call(client, lambda: client.create_network_volume(name, size, data_center))
    if json_out:
        print(json.dumps(volume))
    else:
        out.print(f"network volume [bold]{volume['id']}[/bold] ({volume['name']}, {size} GB)")


@volumes_app.command("list")
def volumes_list(
    json_out: JsonOpt = False, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None
) -> None:
    """List network volumes."""
    with client_for(url, api_key) as client:
        found = call(client, client.list_network_volumes)["networkVolumes"]
    print_records(
        found,
        json_out,
        ("id", "name", "size (GB)", "dataCenter"),
        lambda v: [v["id"], v["name"], str(v["size"]), v["dataCenter"]],
    )


@volumes_app.command("delete")
def volumes_delete(volume_id: str, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None) -> None:
    """Delete a network volume and its files (refused while an endpoint names it)."""
    with client_for(url, api_key) as client:
        call(client, lambda: client.delete_network_volume(volume_id))
    err.print(f"deleted {volume_id}")


PasswordOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from stdin (else PODIUM_REGISTRY_PASSWORD), never an argument.",
    ),
]


@registries_app.command("create")
def registries_create(
    name: Annotated[str, typer.Argument(help="A name for people.")],
    username: Annotated[str, typer.Option(help="The registry's user name.")],
    password_stdin: PasswordOpt = False,
    json_out: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    api_key: KeyOpt = None,
) -> None:
    """Store credentials for a private registry; endpoints and templates name the id as
    containerRegistryAuthId. The password is never shown again."""
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    else:
        password = os.environ.get("PODIUM_REGISTRY_PASSWORD", "")
    if not password:
        err.print(
            "[red]error[/red]: no password: pipe it to --password-stdin "
            "or set PODIUM_REGISTRY_PASSWORD"
        )
        raise typer.Exit(2)
    with client_for(url, api_key) as client:
        registry = call(client, lambda: client.create_registry(name, username, password))
    if json_out:
        print(json.dumps(registry))
    else:
        out.print(f"registry [bold]{registry['id']}[/bold] ({registry['name']})")


@registries_app.command("list")
def registries_list(
    json_out: JsonOpt = False, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None
) -> None:
    """List stored registry credentials (names only)."""
    with client_for(url, api_key) as client:
        found = call(client, client.list_registries)["registries"]
    print_records(found, json_out, ("id", "name"), lambda r: [r["id"], r["name"]])


@registries_app.command("delete")
def registries_delete(registry_id: str, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None) -> None:
    """Delete stored credentials (refused while an endpoint or template names them)."""
    with client_for(url, api_key) as client:
        call(client, lambda: client.delete_registry(registry_id))
    err.print(f"deleted {registry_id}")
