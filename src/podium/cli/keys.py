"""`podium keys ...`: API keys (admin)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from podium.cli.base import (
    DEFAULT_URL,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    client_for,
    err,
    fail,
    keys_app,
    out,
)
from podium.client import PodiumHTTPError


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
    with client_for(url, api_key) as client:
        try:
            key = client.create_key(name, scope or ["run"], endpoint or [])
        except PodiumHTTPError as exc:
            raise fail(exc) from None
    if json_out:
        print(json.dumps(key))
    else:
        err.print(f"API key {key['id']} ({', '.join(key['scopes'])}); shown once:")
        print(key["key"])


@keys_app.command("list")
def keys_list(json_out: JsonOpt = False, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None) -> None:
    """List API keys."""
    with client_for(url, api_key) as client:
        try:
            keys = client.list_keys()
        except PodiumHTTPError as exc:
            raise fail(exc) from None
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
    with client_for(url, api_key) as client:
        try:
            client.revoke_key(key_id)
        except PodiumHTTPError as exc:
            raise fail(exc) from None
    err.print(f"revoked {key_id}")
