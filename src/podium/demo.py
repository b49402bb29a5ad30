"""`make demo`: the RunPod tutorial on Podium, end to end, on this machine.

1. start a gateway (SQLite store in ./data) and create an endpoint,
2. start a Stable Diffusion worker (`--model auto`: the HF cache's SD 1.5 when present,
   else the offline `tiny` model, whose images are noise — the log says so),
3. POST the tutorial's request to /run, follow /status with a progress display,
4. save the status JSON to output.json and decode output[0]["image"] into decoded_image.png.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from podium.images import save_output_images

__all__ = ["main"]

PROMPT = "A cute fluffy white dog in the style of a Pixar animation 3D drawing."
console = Console(stderr=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited with {proc.returncode}; see data/gateway.log")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the gateway did not start within 60 s; see data/gateway.log")


def main() -> int:
    data = Path(os.environ.get("PODIUM_DATA_DIR", "data")).resolve()
    data.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    model = os.environ.get("PODIUM_SD_MODEL", "auto")
    podium = [sys.executable, "-m", "podium.cli"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        console.print(f"[bold]1.[/bold] starting the gateway on {url} (data in {data})")
        gw = subprocess.Popen(
            [*podium, "serve", "--port", str(port), "--data-dir", str(data)],
            stdout=(data / "gateway.log").open("ab"), stderr=subprocess.STDOUT,
        )
        procs.append(gw)
        _wait_up(url, gw)
        key = (data / "admin.key").read_text().strip()
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
            ep = client.post("/v1/endpoints", json={"name": "sd15-demo"}).json()
            console.print(f"    endpoint [bold]{ep['id']}[/bold]")
            console.print(f"[bold]2.[/bold] starting a Stable Diffusion worker (model: {model})")
            worker = subprocess.Popen(
                [*podium, "worker", "--gateway", url, "--endpoint", ep["id"],
                 "--token", ep["workerToken"], "--template", "sd15", "--model", model],
                stdout=(data / "worker.log").open("ab"), stderr=subprocess.STDOUT,
            )
            procs.append(worker)
            console.print(f"[bold]3.[/bold] POST /v2/{ep['id']}/run  {PROMPT!r}")
            job = client.post(f"/v2/{ep['id']}/run", json={"input": {"prompt": PROMPT}}).json()
            with console.status(f"{job['id']}: IN_QUEUE") as spinner:
                while True:
                    if worker.poll() is not None:
                        raise SystemExit("the worker exited; see data/worker.log")
                    st = client.get(f"/v2/{ep['id']}/status/{job['id']}",
                                    params={"wait": 1000}).json()
                    line = st["status"]
                    out = st.get("output")
                    if st["status"] == "IN_PROGRESS" and isinstance(out, dict) and "step" in out:
                        line += f"  step {out['step']}/{out['steps']}"
                    spinner.update(f"{job['id']}: {line}")
                    if st["status"] not in ("IN_QUEUE", "IN_PROGRESS"):
                        break
        if st["status"] != "COMPLETED":
            console.print(f"[red]job ended {st['status']}[/red]: {st.get('error')}")
            return 1
        Path("output.json").write_text(httpx.Response(200, json=st).text)
        saved = save_output_images(st["output"], Path("decoded_image.png"))
        console.print(
            f"[bold]4.[/bold] COMPLETED in {st['executionTime']} ms (queued "
            f"{st['delayTime']} ms), seed {st['output'][0]['seed']}: saved output.json and "
            f"{', '.join(map(str, saved))}"
        )
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
