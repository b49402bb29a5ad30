"""The local backend: worker processes and containers on this machine (the default).

Each worker gets its GPU(s) in CUDA_VISIBLE_DEVICES (gpus.assign: never one GPU for two
workers; no free GPU -> `throttled`; CPU workers, at most `cpu_workers` at once, else
`throttled` too), an isolated HOME (no ~/.runpod/config.toml), its own
process group (fleet/process.py), and one pipe for its stdout and stderr, read by a
LogShipper (podium.logs) that ships the lines, tagged with their jobs (a fresh marker in
PODIUM_LOG_MARKER), to the gateway its RUNPOD_* variables name; the backend's own start
and exit lines go in the same log. On Linux a worker is killed when the gateway process
dies, so no worker outlives its gateway (`shared` is False).

A worker of an image is a container (fleet/containers.py), run through the host's engine
with the same environment, GPUs and log; its engine's CLI is the process the slot watches.
A container outlives a gateway killed with -9 (the engine keeps it): the next start of
the backend removes every container of its installation before it starts any.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import os
import secrets
import socket
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from podium.board import Inventory, SnapshotSummary
from podium.endpoints.containers import ContainerSpec
from podium.endpoints.gpu_ids import parse_gpu_ids
from podium.endpoints.volumes import volume_dir
from podium.fleet.backend import Adopted, Placement, Slot, inherited_env
from podium.fleet.containers import (
    ContainerHost,
    ContainerRun,
    Engine,
    ImagePulls,
    SpawnContainer,
    find_engine,
    remove_owned,
    spawn_container,
)
from podium.fleet.gpus import assign, why_throttled
from podium.fleet.process import Process, Spawn, spawn_process
from podium.fleet.settings import default_cpu_workers
from podium.fleet.snapshots import SnapshotProcess, Snapshotter
from podium.logs.lines import LogLine
from podium.logs.markers import MARKER_ENV, new_marker
from podium.logs.shipper import LogShipper, LogSink, worker_sink

__all__ = ["LocalBackend", "LocalSlot"]

log = logging.getLogger("podium.fleet")

EOF_WAIT_S = 1.0  # after an exit (its group swept): how long its last lines may take


class LocalSlot:
    """One local worker process or container (or a failed start: `poll` then says so)."""

    def __init__(
        self, proc: Process, gpus: tuple[int, ...], node: str, worker_id: str, shipper: LogShipper
    ) -> None:
        self.proc = proc
        self.gpus = gpus
        self.node = node
        self.worker_id = worker_id
        self.shipper = shipper
        self.waiting: str | None = None
        self.code: int | None = None
        self.released = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    @property
    def address(self) -> str:
        return "127.0.0.1"

    @property
    def note(self) -> str | None:
        return self.proc.note

    @property
    def restore_s(self) -> float | None:
        return self.proc.restored_s if isinstance(self.proc, SnapshotProcess) else None

    def poll(self) -> int | None:
        if isinstance(self.proc, SnapshotProcess):
            self.proc.flush_notes(self.shipper.note)
        if self.code is None:
            code = self.proc.poll()
            if code is not None:
                self.code = code
                # its last lines (the pipe ends once its group is swept), then ours
                self.shipper.wait_eof(EOF_WAIT_S)
                self.shipper.note(
                    f"--- podium: worker {self.worker_id} exited with code {code} ---"
                )
                self.shipper.finish()
        return self.code

    def terminate(self) -> None:
        self.proc.terminate()

    def kill(self) -> None:
        self.proc.kill()

    def last_lines(self, n: int) -> list[str]:
        return self.shipper.recent()[-n:] if n > 0 else []

    def release(self) -> None:
        self.gpus = ()
        self.released = True


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
        log_sink: Callable[[Mapping[str, str]], LogSink | None] = worker_sink,
        cpu_workers: int | None = None,
        containers: ContainerHost | None = None,
        spawn_image: SpawnContainer = spawn_container,
        snapshots: Snapshotter | None = None,
    ) -> None:
        """`log_sink`: where a worker's lines go, from the environment it is given
        (default: its gateway's worker-logs route). `cpu_workers`: how many workers
        without a GPU may run at once (default: FleetSettings' default for this machine).
        `containers`: how image workers run here (None: this backend runs none).
        `snapshots`: how flashboot workers are checkpointed and restored (None: they are
        started as any other)."""
        self.cpu_workers = cpu_workers if cpu_workers is not None else default_cpu_workers()
        self.data_dir = data_dir
        self._discover = discover_gpus
        self._spawn = spawn
        env = dict(os.environ if base_env is None else base_env)
        self._base_env = inherited_env(env)
        home = Path(self._base_env.get("HOME") or Path.home())
        self._cache_home = self._base_env.get("XDG_CACHE_HOME") or str(home / ".cache")
        self._log_sink = log_sink
        self._inventory: Inventory | None = None
        self._slots: list[LocalSlot] = []
        # worker id -> the shipper of its last run, while it still sends: the next run's
        # lines queue behind it (restarts read in order in the worker's log)
        self._shippers: dict[str, LogShipper] = {}
        self.host = socket.gethostname()
        self._containers = containers
        self._spawn_image = spawn_image
        self._engine: Engine | None = None
        self._pulls: ImagePulls | None = None
        self._snapshots = snapshots

    async def refresh(self, slots: Sequence[Slot]) -> None:
        if self._inventory is None:
            found = await asyncio.to_thread(self._discover)
            self._inventory = dataclasses.replace(
                found,
                gpus=tuple(dataclasses.replace(g, node=g.node or self.host) for g in found.gpus),
            )
            _announce(self._inventory)
            if self._containers is not None:
                await self._find_engine(self._containers)
        self._slots = [s for s in self._slots if not s.released]

    async def _find_engine(self, host: ContainerHost) -> None:
        """Once: the container engine, and the containers this installation left behind
        (a gateway killed with -9 leaves them running, holding their GPUs) removed."""
        engine = await asyncio.to_thread(find_engine, host.engine_choice, self._base_env)
        if engine is None:
            log.info("no container engine found: endpoints with an image cannot run here")
            return
        log.info("container engine: %s (%s)", engine.describe(), engine.path)
        await asyncio.to_thread(remove_owned, engine, host.owner, self._base_env)
        self._engine, self._pulls = engine, ImagePulls(engine, self._base_env)

    def engine(self) -> str | None:
        return self._engine.describe() if self._engine is not None else None

    def snapshots(self, live: Collection[str]) -> Mapping[str, SnapshotSummary] | None:
        return self._snapshots.summaries(live) if self._snapshots is not None else None

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
        cpu_slots = sum(1 for s in self._slots if not s.gpus and not s.released)
        if not gpus and cpu_slots >= self.cpu_workers:
            return (
                f"this machine runs at most {self.cpu_workers} CPU workers at once "
                "(PODIUM_CPU_WORKERS); waiting for one to end"
            )
        label = ",".join(g.name for g in inventory.gpus if g.index in gpus) or "cpu"
        home = self.data_dir / "workers" / p.worker_id
        home.mkdir(parents=True, exist_ok=True)
        self._shippers = {w: s for w, s in self._shippers.items() if s.sending()}
        if p.container is not None:
            return self._place_container(p, p.container, gpus, label, home)
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
        marker = env[MARKER_ENV] = new_marker()
        sink = self._log_sink(env) or _NoSink()
        header = (
            f"--- podium: worker {p.worker_id} {'restart' if p.restart else 'start'}, GPUs "
            f"[{env['CUDA_VISIBLE_DEVICES']}]: {p.argv[0] if p.argv else '?'} ---"
        )
        after = self._shippers.get(p.worker_id)
        try:
            if p.snapshot and self._snapshots is not None:
                proc: Process = self._snapshots.spawn(p.endpoint_id, p.argv, env)
            else:
                proc = self._spawn(p.argv, env, None)
        except (OSError, ValueError) as exc:
            shipper = LogShipper(None, sink, name=p.worker_id, after=after).start()
            shipper.note(header)
            shipper.note(f"--- podium: cannot start {list(p.argv[:1])}: {exc} ---")
            shipper.finish()
            self._shippers[p.worker_id] = shipper
            raise
        return self._watch(p, proc, env, marker, gpus, header)

    def _place_container(
        self, p: Placement, spec: ContainerSpec, gpus: tuple[int, ...], label: str, home: Path
    ) -> LocalSlot:
        host, engine, pulls = self._containers, self._engine, self._pulls
        if host is None or engine is None or pulls is None:
            raise OSError(
                errno.ENOENT,
                "no container engine on this host for its image: install Podman or Docker, "
                "or set PODIUM_CONTAINER_ENGINE",
            )
        creds = None
        if spec.registry_id is not None:
            creds = host.credentials(spec.registry_id)
            if creds is None:
                raise OSError(
                    errno.ENOENT,
                    f"the password of registry {spec.registry_id} is not in this gateway's "
                    "data dir (create the registry through this gateway, or share its data dir)",
                )
        volume = None
        if spec.volume_id is not None:
            volume = volume_dir(host.volume_root, spec.volume_id)
            Path(volume).mkdir(parents=True, exist_ok=True)
        env = {
            "PYTHONUNBUFFERED": "1",
            **p.env(label),
            "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus),
        }
        marker = env[MARKER_ENV] = new_marker()
        run = ContainerRun(
            spec,
            name=f"podium-{p.worker_id}-{secrets.token_hex(3)}",
            owner=host.owner,
            endpoint_id=p.endpoint_id,
            worker_id=p.worker_id,
            slot=p.slot,
            volume_dir=volume,
            creds=creds,
        )
        proc = self._spawn_image(engine, run, env, self._base_env, gpus, pulls, home)
        header = (
            f"--- podium: worker {p.worker_id} {'restart' if p.restart else 'start'}, GPUs "
            f"[{env['CUDA_VISIBLE_DEVICES']}]: image {spec.image} ---"
        )
        return self._watch(p, proc, env, marker, gpus, header)

    def _watch(
        self,
        p: Placement,
        proc: Process,
        env: Mapping[str, str],
        marker: str,
        gpus: tuple[int, ...],
        header: str,
    ) -> LocalSlot:
        """The slot of a started worker, its output read by a LogShipper."""
        sink = self._log_sink(env) or _NoSink()
        after = self._shippers.get(p.worker_id)
        shipper = LogShipper(proc.stdout, sink, marker=marker, name=p.worker_id, after=after)
        shipper.note(header)  # before the reader starts: the first line of this run
        self._shippers[p.worker_id] = shipper
        slot = LocalSlot(proc, gpus, self.host, p.worker_id, shipper.start())
        self._slots.append(slot)
        return slot

    async def adopt(self) -> list[Adopted]:
        return []  # local workers die with their gateway

    async def close(self) -> None:
        if self._snapshots is not None:
            self._snapshots.close()


class _NoSink:
    """A worker whose URLs name no Podium gateway: its lines are read (and kept for
    `last_lines`) but go nowhere."""

    def send(self, lines: Sequence[LogLine], dropped: int) -> None:
        return None


def _announce(inventory: Inventory) -> None:
    if inventory.warning:
        log.warning("%s", inventory.warning)
    for g in inventory.gpus:
        log.info("GPU %d: %s, %d MiB (%s)", g.index, g.name, g.memory_mb, inventory.source)
