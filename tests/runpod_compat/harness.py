"""Processes and helpers for the RunPod SDK compatibility tests.

The official `runpod` package lives in its own virtual environment (.venv-runpod: it pins
many packages), so everything that imports it runs as a subprocess of that interpreter:
worker programs from handlers/, and sdk_driver.py for the client side.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.e2e.conftest import Gateway, wait_until, worker_env

REPO = Path(__file__).resolve().parents[2]
RUNPOD_PY = REPO / ".venv-runpod" / "bin" / "python"
HERE = Path(__file__).resolve().parent
HANDLERS = HERE / "handlers"
DRIVER = HERE / "sdk_driver.py"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}

requires_runpod = pytest.mark.skipif(
    not RUNPOD_PY.exists(),
    reason=f"the official runpod SDK venv is missing ({RUNPOD_PY}); create it with: "
    "python3.11 -m venv .venv-runpod && .venv-runpod/bin/pip install runpod==1.12.0",
)
RUNPOD_MARKS = [pytest.mark.e2e, pytest.mark.runpod, requires_runpod]


# --- process helpers -----------------------------------------------------------------


def kill_group(proc: subprocess.Popen[Any] | None) -> None:
    """Kill a process started with start_new_session=True and everything it forked
    (the SDK's heartbeat runs in a child process that must not outlive the test)."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def tail(path: Path | None, n: int = 4000) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return path.read_text(errors="replace")[-n:]


# --- talking to the gateway with httpx (admin key) -----------------------------------


def submit(gw: Gateway, endpoint_id: str, inp: dict[str, Any], **extra: Any) -> str:
    with gw.client() as c:
        r = c.post(f"/v2/{endpoint_id}/run", json={"input": inp, **extra})
        assert r.status_code == 200, r.text
        return r.json()["id"]


def get_status(gw: Gateway, endpoint_id: str, job_id: str, wait_ms: int | None = None) -> dict:
    params = {} if wait_ms is None else {"wait": str(wait_ms)}
    with gw.client() as c:
        r = c.get(f"/v2/{endpoint_id}/status/{job_id}", params=params)
        assert r.status_code == 200, r.text
        return r.json()


def cancel(gw: Gateway, endpoint_id: str, job_id: str) -> dict:
    with gw.client() as c:
        r = c.post(f"/v2/{endpoint_id}/cancel/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()


def health(gw: Gateway, endpoint_id: str) -> dict:
    with gw.client() as c:
        r = c.get(f"/v2/{endpoint_id}/health")
        assert r.status_code == 200, r.text
        return r.json()


def wait_final(
    gw: Gateway,
    endpoint_id: str,
    job_id: str,
    timeout: float = 20.0,
    worker: RunpodWorker | None = None,
) -> dict:
    """Long-poll /status?wait= until the job is final (bounded)."""
    deadline = time.monotonic() + timeout
    st = get_status(gw, endpoint_id, job_id)
    while st["status"] not in FINAL:
        left = deadline - time.monotonic()
        if left <= 0:
            log = worker.log_tail() if worker is not None else ""
            raise AssertionError(f"job {job_id} not final after {timeout} s: {st}\n{log}")
        st = get_status(gw, endpoint_id, job_id, wait_ms=int(min(left, 2.0) * 1000) + 1)
    return st


# --- RunPod SDK workers --------------------------------------------------------------


@dataclass
class RunpodWorker:
    """One `runpod.serverless.start(...)` process on its own endpoint."""

    gw: Gateway
    program: str
    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    endpoint: dict[str, Any] = field(default_factory=dict)
    worker_id: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint_id(self) -> str:
        return self.endpoint["id"]

    @property
    def markers(self) -> Path:
        return self.root / "markers"

    def start(self) -> RunpodWorker:
        if not self.endpoint:
            self.endpoint = self.gw.create_endpoint(name=f"rp-{Path(self.program).stem}")
        self.worker_id = f"rpw-{uuid.uuid4().hex[:10]}"
        self.markers.mkdir(parents=True, exist_ok=True)
        env = worker_env(self.gw, self.endpoint, self.worker_id, self.root / "home")
        env.update(
            {
                "PODIUM_TEST_MARKERS": str(self.markers),
                "RUNPOD_DEBUG_LEVEL": "DEBUG",  # the log is shown when a test fails
                **self.extra_env,
            }
        )
        assert not (self.root / "home" / ".runpod" / "config.toml").exists()
        self.log_path = self.root / f"{self.worker_id}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(RUNPOD_PY), str(HANDLERS / self.program)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        return self

    def log_tail(self, n: int = 4000) -> str:
        return f"--- worker {self.worker_id} log ---\n{tail(self.log_path, n)}"

    def wait_ready(self, timeout: float = 30.0) -> RunpodWorker:
        """Until the worker's heartbeat has reached the gateway."""

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker exited early\n{self.log_tail()}")
            return health(self.gw, self.endpoint_id)["workers"]["ready"] >= 1

        try:
            wait_until(ready, timeout=timeout, interval=0.2, what="runpod worker heartbeat")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None
        return self

    def stop(self) -> None:
        kill_group(self.proc)


class WorkerPool:
    """Session-wide workers, all started at once on first use (imports run in parallel)."""

    SPECS: ClassVar[dict[str, tuple[str, dict[str, str]]]] = {
        "sync": ("sync_handler.py", {}),
        "async": ("async_handler.py", {}),
        "gen_aggregate": ("gen_handler.py", {"PODIUM_TEST_AGGREGATE": "1"}),
        "gen_plain": ("gen_handler.py", {"PODIUM_TEST_GEN_KIND": "async"}),
    }

    def __init__(self, gw: Gateway, root: Path) -> None:
        self.gw = gw
        self.root = root
        self.workers: dict[str, RunpodWorker] = {}
        self.ready: set[str] = set()

    def get(self, name: str) -> RunpodWorker:
        if not self.workers:
            for key, (program, env) in self.SPECS.items():
                self.workers[key] = RunpodWorker(
                    self.gw, program, self.root / key, extra_env=env
                ).start()
        worker = self.workers[name]
        if name not in self.ready:
            worker.wait_ready()
            self.ready.add(name)
        return worker

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()


# --- the SDK client driver -----------------------------------------------------------


class SdkDriver:
    """A long-lived sdk_driver.py process: `call(op, **args)` → the op's JSON result."""

    def __init__(self, gw: Gateway, root: Path) -> None:
        self.gw = gw
        self.root = root
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_path = root / "driver.stderr"

    def _start(self) -> None:
        home = self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
        env.update(
            {
                "HOME": str(home),
                "PYTHONUNBUFFERED": "1",
                "RUNPOD_ENDPOINT_BASE_URL": f"{self.gw.url}/v2",
                "RUNPOD_API_BASE_URL": self.gw.url,  # the SDK's GraphQL calls: {this}/graphql
            }
        )
        self.lines = queue.Queue()
        with self.stderr_path.open("a") as err:
            self.proc = subprocess.Popen(
                [str(RUNPOD_PY), str(DRIVER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        lines, out = self.lines, self.proc.stdout

        def pump() -> None:
            assert out is not None
            with out:  # the pipe's one reader closes it at its end
                for line in out:
                    lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def call(self, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        """The raw reply: {"ok": bool, "result"|"type"+"error"+"traceback": ...}."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                self.stop()  # a hung SDK call: the next call starts a fresh driver
                raise AssertionError(
                    f"SDK op {op!r} did not answer in {timeout} s\n{tail(self.stderr_path)}"
                ) from None
            if line is None:
                self.stop()
                raise AssertionError(f"SDK driver exited\n{tail(self.stderr_path)}")
            if line.startswith("@@RESULT "):
                return json.loads(line[len("@@RESULT ") :])

    def ok(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        reply = self.call(op, timeout=timeout, **args)
        assert reply["ok"], f"SDK op {op!r} raised {reply['type']}: {reply['traceback']}"
        return reply["result"]

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
            kill_group(self.proc)
            self.proc = None
