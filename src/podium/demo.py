"""`make demo`: the RunPod tutorial on Podium, end to end, on this machine.

1. `podium up`: a gateway (SQLite store in ./data), the supervisor and an `sd15` endpoint
   whose worker it starts (`--model auto`: the HF cache's SD 1.5 when present, else the
   offline `tiny` model, whose images are noise — the log and this script say so),
2. POST the tutorial's request to /run with the endpoint's key,
3. follow /status with a progress display and save the final status to output.json,
4. decode output[0]["image"] into decoded_image.png, as the tutorial's snippet does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from podium.gateway.quickstart import DEFAULT_NAME, TUTORIAL_INPUT
from podium.output_images import decode_status_file
from podium.sd.weights import TINY_NOTE, sd15_available
from podium.settings import ADMIN_KEY_FILE, CLIENT_KEY_FILE

__all__ = ["main"]

PROMPT = TUTORIAL_INPUT["prompt"]
IMAGE = Path("decoded_image.png")
console = Console(stderr=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # (host, port) for AF_INET
        return port


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"podium up exited with {proc.returncode}; see data/podium-up.log")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("podium up did not start within 60 s; see data/podium-up.log")


def main() -> int:
    data = Path(os.environ.get("PODIUM_DATA_DIR", "data")).resolve()
    data.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    model = os.environ.get("PODIUM_SD_MODEL", "auto")
    if model == "auto" and not sd15_available():
        console.print(f"[yellow]note[/yellow]: {TINY_NOTE}")
        model = "tiny"
    console.print(
        f"[bold]1.[/bold] podium up: gateway on {url}, supervisor, an sd15 endpoint "
        f"(model {model}); data and logs in {data}"
    )
    with (data / "podium-up.log").open("ab") as log_out:  # the child keeps its own descriptor
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "podium.cli",
                "up",
                "--port",
                str(port),
                "--data-dir",
                str(data),
                "--model",
                model,
            ],
            stdout=log_out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_up(url, up)
        admin = (data / ADMIN_KEY_FILE).read_text().strip()
        key = (data / CLIENT_KEY_FILE).read_text().strip()
        endpoints = httpx.get(
            f"{url}/v1/endpoints", headers={"Authorization": f"Bearer {admin}"}, timeout=10
        ).json()
        ep = next(e["id"] for e in endpoints if e["name"] == DEFAULT_NAME)
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as client:
            console.print(f"[bold]2.[/bold] POST /v2/{ep}/run  {PROMPT!r}")
            job = client.post(f"/v2/{ep}/run", json={"input": {"prompt": PROMPT}}).json()
            st = _follow(client, ep, job["id"], up)
        if st["status"] != "COMPLETED":
            console.print(f"[red]job ended {st['status']}[/red]: {st.get('error')}")
            return 1
        Path("output.json").write_text(json.dumps(st, indent=2))
        console.print(
            f"[bold]3.[/bold] COMPLETED: delayTime {st['delayTime']} ms, executionTime "
            f"{st['executionTime']} ms, seed {st['output'][0]['seed']}; saved output.json"
        )
        console.print(f"[bold]4.[/bold] {decode_status_file(Path('output.json'), IMAGE)}")
        return 0
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()


def _follow(client: httpx.Client, ep: str, job_id: str, up: subprocess.Popen[bytes]) -> Any:
    """Long-poll the status, showing the queue and per-step progress."""
    with console.status(f"{job_id}: IN_QUEUE (the worker loads the model first)") as spinner:
        while True:
            if up.poll() is not None:
                raise SystemExit("podium up exited; see data/podium-up.log")
            st = client.get(f"/v2/{ep}/status/{job_id}", params={"wait": 1000}).json()
            line = st["status"]
            out = st.get("output")
            if st["status"] == "IN_PROGRESS" and isinstance(out, dict) and "step" in out:
                line += f"  step {out['step']}/{out['steps']}"
            spinner.update(f"{job_id}: {line}")
            if st["status"] not in ("IN_QUEUE", "IN_PROGRESS"):
                return st


if __name__ == "__main__":
    sys.exit(main())
