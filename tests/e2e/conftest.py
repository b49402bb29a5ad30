"""Real gateway processes on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.settings import ADMIN_KEY_FILE

PODIUM = [sys.executable, "-m", "podium.cli"]
E2E_PING_INTERVAL_MS = 1000  # lease = 3 s, so lost workers are noticed quickly


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll `predicate` until it returns a truthy value (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


@dataclass
class Gateway:
    """A `podium serve` process; restartable on the same data dir and port."""

    data_dir: Path
    port: int
    store: str | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment
    start_timeout: float = 15.0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_key(self) -> str:
        return (self.data_dir / ADMIN_KEY_FILE).read_text().strip()

    def start(self) -> Gateway:
        self.log_path = self.data_dir / f"gateway-{self.port}.log"
        args = [
            *PODIUM,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--ping-interval-ms",
            str(E2E_PING_INTERVAL_MS),
            "--take-hold-s",
            "5",
            "--allow-private-webhooks",
            *self.extra_args,
        ]
        if self.store:
            args += ["--store", self.store]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("ab") as log_out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(args, stdout=log_out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until(
                self._up,
                timeout=self.start_timeout,
                what=f"gateway on {self.url} (log: {self.log_path})",
            )
        except AssertionError:
            self.stop()  # a gateway that did not come up does not outlive the test
            raise
        return self

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"gateway exited: {self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def client(self, key: str | None = None, timeout: float = 30) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=timeout,
        )

    def create_endpoint(self, **spec: Any) -> dict[str, Any]:
        with self.client() as c:
            r = c.post("/v1/endpoints", json={"name": "e2e", **spec})
            r.raise_for_status()
            return r.json()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(data_dir=tmp_path / "gw", port=free_port())
    gw.data_dir.mkdir()
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def worker_env(gw: Gateway, endpoint: dict[str, Any], worker_id: str, home: Path) -> dict[str, str]:
    """Every RUNPOD_* variable a worker needs (PROTOCOL.md §2), with an isolated HOME."""
    base = f"{gw.url}/v2/{endpoint['id']}"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")},
        "HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=cpu",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=cpu",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=cpu",
        "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?gpu=cpu",
        "RUNPOD_AI_API_KEY": endpoint["workerToken"],
        "RUNPOD_POD_ID": worker_id,
        "RUNPOD_ENDPOINT_ID": endpoint["id"],
        "RUNPOD_PING_INTERVAL": str(E2E_PING_INTERVAL_MS),
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "RUNPOD_DEBUG_LEVEL": "INFO",
    }


def kill9_while_submitting(
    gw: Gateway, endpoint_id: str, key: str, threads: int = 3, at_least: int = 60
) -> list[str]:
    """Submit jobs from several threads, kill -9 the gateway once `at_least` were
    acknowledged, and return the ids it acknowledged (200 with an id) before it died."""
    import threading

    acked: list[str] = []
    stop = threading.Event()

    def submit_loop() -> None:
        with gw.client(key) as c:
            for i in range(2000):  # bounded
                if stop.is_set():
                    return
                try:
                    r = c.post(f"/v2/{endpoint_id}/run", json={"input": {"i": i}}, timeout=5)
                except httpx.HTTPError:
                    return  # the gateway died mid-request: not acknowledged
                if r.status_code == 200:
                    acked.append(r.json()["id"])

    workers = [threading.Thread(target=submit_loop) for _ in range(threads)]
    for t in workers:
        t.start()
    try:
        wait_until(lambda: len(acked) >= at_least, timeout=20, what=f"{at_least} acknowledged jobs")
    finally:
        gw.kill9()
        stop.set()
        for t in workers:
            t.join(10)
    return acked
