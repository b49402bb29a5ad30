"""`podium run`, `status`, `decode`: jobs from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from podium.cli.base import (
    DEFAULT_URL,
    KeyOpt,
    UrlOpt,
    app,
    call,
    client_for,
    err,
    fail,
    out,
)
from podium.client import PodiumHTTPError
from podium.jobs import JobStatus


def _parse_payload(payload: str) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter("must be a JSON object")
    return data if "input" in data else {"input": data}


def _progress_line(status: dict[str, Any]) -> str:
    line: str = status["status"]
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
    from podium.output_images import save_output_images

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
    with client_for(url, api_key) as client:
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
            raise fail(exc) from None
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
    from podium.output_images import DecodeError, decode_status_file

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
    with client_for(url, api_key) as client:
        out.print_json(data=call(client, lambda: client.status(endpoint_id, job_id)))
