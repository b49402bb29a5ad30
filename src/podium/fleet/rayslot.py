"""The Ray actor that runs one worker process on its node (a worker slot).

raycluster.py creates one named, detached actor of this class per worker slot; Ray
places it where the GPUs it asks for are free and sets their ids (`ray.get_gpu_ids()`),
which the worker gets in CUDA_VISIBLE_DEVICES. The worker process (fleet/process.py) has
its own process group and dies with the actor (a lost node takes its workers with it),
an isolated HOME under the node's temp directory, and its stdout and stderr in
TMP/podium-ray/logs/<endpoint>/<worker>.log on the node (rotated at each start).

Every method returns at once (the controller polls); `start` runs first.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from podium.fleet import logs
from podium.fleet.backend import inherited_env
from podium.fleet.process import Process, spawn_process

__all__ = ["NODE_DIR_NAME", "WorkerSlot"]

NODE_DIR_NAME = "podium-ray"  # under the node's temp directory
TAIL_LINES = 50
EXIT_SPAWN_FAILED = 127  # the command could not be started (as a shell says)


class WorkerSlot:
    def __init__(self, endpoint_id: str, worker_id: str, slot: int) -> None:
        self.endpoint_id = endpoint_id
        self.worker_id = worker_id
        self.slot = slot
        self.proc: Process | None = None
        self.code: int | None = None
        self.draining = False
        self.started_at: float | None = None
        self.gpus: tuple[int, ...] = ()
        self.log_file: Path | None = None

    def start(
        self, argv: Sequence[str], env: Mapping[str, str], log_max_bytes: int, restart: bool
    ) -> dict[str, Any]:
        import ray  # on the node, inside the actor

        self.gpus = tuple(int(g) for g in ray.get_gpu_ids())
        node_dir = Path(tempfile.gettempdir()) / NODE_DIR_NAME
        home = node_dir / "workers" / self.worker_id
        home.mkdir(parents=True, exist_ok=True)
        base = inherited_env(os.environ)
        real_home = Path(base.get("HOME") or Path.home())
        full_env = {
            **base,
            # An isolated HOME (no ~/.runpod/config.toml); caches stay shared.
            "HOME": str(home),
            "XDG_CACHE_HOME": base.get("XDG_CACHE_HOME") or str(real_home / ".cache"),
            "PODIUM_DATA_DIR": str(node_dir),
            **env,
            "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in self.gpus),
        }
        self.log_file = logs.log_path(node_dir, self.endpoint_id, self.worker_id)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        logs.rotate_if_large(self.log_file, log_max_bytes)
        self._note(
            f"worker {self.worker_id} {'restart' if restart else 'start'} at "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')} on Ray node "
            f"{ray.get_runtime_context().get_node_id()[:12]}, GPUs "
            f"[{full_env['CUDA_VISIBLE_DEVICES']}]: {argv[0] if argv else '?'}"
        )
        self.started_at = time.time()
        try:
            self.proc = spawn_process(argv, full_env, self.log_file)
        except OSError as exc:
            self._note(f"cannot start {list(argv[:1])}: {exc}")
            self.code = EXIT_SPAWN_FAILED
        return self.describe()

    def describe(self) -> dict[str, Any]:
        import ray

        ctx = ray.get_runtime_context()
        return {
            "endpoint_id": self.endpoint_id,
            "worker_id": self.worker_id,
            "slot": self.slot,
            "pid": self.proc.pid if self.proc is not None else None,
            "node": ctx.get_node_id(),
            "gpus": list(self.gpus),
            "started_at": self.started_at,
            "draining": self.draining,
            "code": self.poll()["code"],
            "log": str(self.log_file) if self.log_file else None,
        }

    def poll(self) -> dict[str, Any]:
        """{"code": exit code or None, "tail": the last lines of its output once ended}."""
        if self.code is None and self.proc is not None:
            code = self.proc.poll()
            if code is not None:
                self.code = code
                self._note(f"worker {self.worker_id} exited with code {code}")
        tail: list[str] = []
        if self.code is not None and self.log_file is not None:
            with contextlib.suppress(OSError):
                tail = logs.tail(self.log_file, TAIL_LINES).splitlines()
        return {"code": self.code, "tail": tail}

    def terminate(self) -> None:
        """A drain: SIGTERM; the worker finishes its job and exits."""
        self.draining = True
        if self.proc is not None:
            self.proc.terminate()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def _note(self, text: str) -> None:
        if self.log_file is not None:
            with contextlib.suppress(OSError), self.log_file.open("a") as fh:
                fh.write(f"--- podium: {text} ---\n")
