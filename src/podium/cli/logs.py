"""`podium logs`: the workers' output, tailed or followed."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from podium.cli.base import (
    DEFAULT_URL,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    app,
    call,
    client_for,
    err,
)
from podium.client import PodiumClient


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
    with client_for(url, api_key) as client:
        if follow:
            call(client, lambda: _follow(client, endpoint_id, tail, worker, job, json_out))
            return
        body = call(client, lambda: client.endpoint_logs(endpoint_id, tail, worker, job))
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
