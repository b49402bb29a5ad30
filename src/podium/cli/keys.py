"""`podium keys ...`: API keys (admin)."""

from __future__ import annotations

import json
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
    keys_app,
    print_records,
)


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
        key = call(client, lambda: client.create_key(name, scope or ["run"], endpoint or []))
    if json_out:
        print(json.dumps(key))
    else:
        err.print(f"API key {key['id']} ({', '.join(key['scopes'])}); shown once:")
        print(key["key"])


@keys_app.command("list")
def keys_list(json_out: JsonOpt = False, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None) -> None:
    """List API keys."""
    with client_for(url, api_key) as client:
        keys = call(client, client.list_keys)
    print_records(
        keys,
        json_out,
        ("id", "name", "scopes", "endpoints", "prefix", "revoked"),
        lambda k: [
            k["id"],
            k["name"],
            ",".join(k["scopes"]),
            ",".join(k["endpoints"]) or "*",
            k["prefix"] + "…",
            "yes" if k["revoked"] else "",
        ],
    )


@keys_app.command("revoke")
def keys_revoke(key_id: str, url: UrlOpt = DEFAULT_URL, api_key: KeyOpt = None) -> None:
    """Revoke an API key."""
    with client_for(url, api_key) as client:
        call(client, lambda: client.revoke_key(key_id))
    err.print(f"revoked {key_id}")
