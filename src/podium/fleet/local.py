"""The local backend: worker processes on this machine (the embedded default).

Each worker gets its GPU(s) in CUDA_VISIBLE_DEVICES (gpus.assign: never one GPU for two
workers; no free GPU -> `throttled`), an isolated HOME (no ~/.runpod/config.toml), its own
process group (fleet/process.py), and its stdout and stderr in
DATA_DIR/logs/<endpoint>/<worker>.log. On Linux a worker is killed when the gateway
process dies, so no worker outlives its gateway (`shared` is False).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from podium.endpoints.gpu_ids import parse_gpu_ids
from podium.fleet import logs
from podium.fleet.backend import Adopted, Placement, Slot, inherited_env
from podium.fleet.gpus import Inventory, assign, why_throttled
from podium.fleet.process import Process, Spawn, spawn_process

__all__ = ["LocalBackend", "LocalSlot"]

log = logging.getLogger("podium.fleet")


class LocalSlot:
    """One local worker process (or a failed start: `poll` then says so)."""

    def __init__(self, proc: Process, gpus: tuple[int, ...], node: str, log_file: Path) -> None:
        self.proc = proc
        self.gpus = gpus
        self.node = node
        self.log_file = log_file
        self.waiting: str | None = None
        self.code: int | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    @property
    def log(self) -> str | None:
        return str(self.log_file)

    def poll(self) -> int | None:
        if self.code is None:
            code = self.proc.poll()
            if code is not None:
                self.code = code
                with contextlib.suppress(OSError), self.log_file.open("a") as fh:
                    worker = self.log_file.stem
                    fh.write(f"--- podium: worker {worker} exited with code {code} ---\n")
        return self.code

    def terminate(self) -> None:
        self.proc.terminate()

    def kill(self) -> None:
        self.proc.kill()

    def last_lines(self, n: int) -> list[str]:
        try:
            return logs.tail(self.log_file, n).splitlines()
        except OSError:
            return []

    def release(self) -> None:
        self.gpus = ()


class LocalBackend:
    name = "local"
    shared = False

    def __init__(
        self,
        data_dir: Path,
        discover_gpus: Callable[[], Inventory],
        *,
        spawn: Spawn = spawn_process,
        base_env: Mapping[str, str] | None = None,
        log_max_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.data_dir = data_dir
        self._discover = discover_gpus
        self._spawn = spawn
        env = dict(os.environ if base_env is None else base_env)
        self._base_env = inherited_env(env)
        home = Path(self._base_env.get("HOME") or Path.home())
        self._cache_home = self._base_env.get("XDG_CACHE_HOME") or str(home / ".cache")
        self._log_max_bytes = log_max_bytes
        self._inventory: Inventory | None = None
        self._slots: list[LocalSlot] = []
        self.host = socket.gethostname()

    async def refresh(self, slots: Sequence[Slot]) -> None:
        if self._inventory is None:
            found = await asyncio.to_thread(self._discover)
            self._inventory = dataclasses.replace(
                found,
                gpus=tuple(dataclasses.replace(g, node=g.node or self.host) for g in found.gpus),
            )
            _announce(self._inventory)
        self._slots = [s for s in self._slots if s.gpus]

    def inventory(self) -> Inventory | None:
        return self._inventory

    def place(self, p: Placement) -> LocalSlot | str:
        inventory = self._inventory
        if inventory is None:
            return "waiting for GPU discovery"
        request = parse_gpu_ids(p.gpu_ids)
        in_use = {g for s in self._slots for g in s.gpus}
        gpus = assign(inventory, request, p.gpu_count, in_use)
        if gpus is None:
            return why_throttled(inventory, request, p.gpu_count)
        label = ",".join(g.name for g in inventory.gpus if g.index in gpus) or "cpu"
        home = self.data_dir / "workers" / p.worker_id
        home.mkdir(parents=True, exist_ok=True)
        env = {
            **self._base_env,
            # An isolated HOME: a RunPod SDK worker must not read ~/.runpod/config.toml.
            # Caches stay shared (models are big), so XDG_CACHE_HOME keeps the real one.
            "HOME": str(home),
            "XDG_CACHE_HOME": self._cache_home,
            "PODIUM_DATA_DIR": str(self.data_dir),
            "PYTHONUNBUFFERED": "1",
            **p.env(label),
            "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus),
        }
        log_file = logs.log_path(self.data_dir, p.endpoint_id, p.worker_id)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        logs.rotate_if_large(log_file, self._log_max_bytes)
        with log_file.open("a") as fh:
            fh.write(
                f"--- podium: worker {p.worker_id} {'restart' if p.restart else 'start'} at "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')}, GPUs [{env['CUDA_VISIBLE_DEVICES']}]: "
                f"{p.argv[0] if p.argv else '?'} ---\n"
            )
        try:
            proc = self._spawn(p.argv, env, log_file)
        except OSError as exc:
            with log_file.open("a") as fh:
                fh.write(f"--- podium: cannot start {list(p.argv[:1])}: {exc} ---\n")
            raise
        slot = LocalSlot(proc, gpus, self.host, log_file)
        self._slots.append(slot)
        return slot

    async def adopt(self) -> list[Adopted]:
        return []  # local workers die with their gateway

    async def close(self) -> None:
        return None


def _announce(inventory: Inventory) -> None:
    if inventory.warning:
        log.warning("%s", inventory.warning)
    for g in inventory.gpus:
        log.info("GPU %d: %s, %d MiB (%s)", g.index, g.name, g.memory_mb, inventory.source)
