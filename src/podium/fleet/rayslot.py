"""The Ray actor that runs one worker process on its node (a worker slot).

raycluster.py creates one named, detached actor of this class per worker slot; Ray
places it where the GPUs it asks for are free and sets their ids (`ray.get_gpu_ids()`),
which the worker gets in CUDA_VISIBLE_DEVICES. The worker process (fleet/process.py) has
its own process group and dies with the actor (a lost node takes its workers with it),
an isolated HOME under the node's temp directory, and one pipe for its stdout and
stderr, read by a LogShipper (podium.logs) on the node that ships the lines, tagged with
their jobs, to the gateway its RUNPOD_* variables name (`podium logs`, the console), as
the local backend does; the actor's own start and exit lines go in the same log.

Every method returns at once (the controller polls); `start` runs first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from podium.endpoints.containers import (
    LABEL_ENDPOINT,
    LABEL_OWNER,
    LABEL_SLOT,
    ContainerSpec,
    remove_argv,
)
from podium.endpoints.volumes import volume_dir
from podium.fleet.backend import inherited_env
from podium.fleet.containers import (
    ContainerRun,
    Engine,
    ImagePulls,
    find_engine,
    spawn_container,
)
from podium.fleet.process import Process, spawn_process
from podium.fleet.settings import FleetSettings
from podium.fleet.snapshots import SnapshotProcess, Snapshotter
from podium.logs.lines import LogLine
from podium.logs.markers import MARKER_ENV, new_marker
from podium.logs.shipper import LogShipper, worker_sink

__all__ = ["NODE_DIR_NAME", "WorkerSlot"]

NODE_DIR_NAME = "podium-ray"  # under the node's temp directory
TAIL_LINES = 50
EOF_WAIT_S = 1.0  # after an exit: how long its last lines may take to be read
# ... and to be sent: the controller ends this actor (ray.kill) once it saw the exit, and
# the shipper's threads die with it, so its last batch goes out before the exit is told.
SHIP_WAIT_S = 5.0
EXIT_SPAWN_FAILED = 127  # the command could not be started (as a shell says)


class _NoSink:
    """Worker URLs that name no Podium gateway: lines are kept for `poll`'s tail only."""

    def send(self, lines: Sequence[LogLine], dropped: int) -> None:
        return None


class WorkerSlot:
    def __init__(self, endpoint_id: str, worker_id: str, slot: int) -> None:
        self.endpoint_id = endpoint_id
        self.worker_id = worker_id
        self.slot = slot
        self.proc: Process | None = None
        self.shipper: LogShipper | None = None
        self.code: int | None = None
        self.draining = False
        self.started_at: float | None = None
        self.gpus: tuple[int, ...] = ()
        self.engine: str | None = None  # the container engine its image runs on

    def start(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        restart: bool,
        container: Mapping[str, Any] | None = None,
        snapshot: bool = False,
    ) -> dict[str, Any]:
        """Run the worker: `argv` as a process, or with `container` (raycluster's
        `_container`) the image through this node's engine. `snapshot` (flashboot): the
        process is checkpointable and restored from this node's snapshot when there is
        one (fleet/snapshots.py), where the node has CRIU >= 4 and root."""
        import ray  # on the node, inside the actor

        self.gpus = tuple(int(g) for g in ray.get_gpu_ids())
        if container is not None:
            return self._start_container(container, env, restart)
        home = Path(tempfile.gettempdir()) / NODE_DIR_NAME / "workers" / self.worker_id
        home.mkdir(parents=True, exist_ok=True)
        base = inherited_env(os.environ)
        real_home = Path(base.get("HOME") or Path.home())
        full_env = {
            **base,
            # An isolated HOME (no ~/.runpod/config.toml); caches stay shared.
            "HOME": str(home),
            "XDG_CACHE_HOME": base.get("XDG_CACHE_HOME") or str(real_home / ".cache"),
            "PYTHONUNBUFFERED": "1",
            **env,
            "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in self.gpus),
        }
        marker = full_env[MARKER_ENV] = new_marker()
        sink = worker_sink(full_env) or _NoSink()
        header = (
            f"--- podium: worker {self.worker_id} {'restart' if restart else 'start'} on Ray "
            f"node {ray.get_runtime_context().get_node_id()[:12]}, GPUs "
            f"[{full_env['CUDA_VISIBLE_DEVICES']}]: {argv[0] if argv else '?'} ---"
        )
        self.started_at = time.time()
        snapshots = _node_snapshotter() if snapshot else None
        try:
            if snapshots is not None:
                self.proc = snapshots.spawn(self.endpoint_id, argv, full_env)
            else:
                self.proc = spawn_process(argv, full_env, None)
        except (OSError, ValueError) as exc:
            self.shipper = LogShipper(None, sink, name=self.worker_id).start()
            self.shipper.note(header)
            self.shipper.note(f"--- podium: cannot start {list(argv[:1])}: {exc} ---")
            self.shipper.finish(give_up_s=SHIP_WAIT_S)
            self.shipper.join(SHIP_WAIT_S)
            self.code = EXIT_SPAWN_FAILED
            return self.describe()
        self.shipper = LogShipper(self.proc.stdout, sink, marker=marker, name=self.worker_id)
        self.shipper.note(header)  # before the reader starts: the first line of this run
        self.shipper.start()
        return self.describe()

    def _start_container(
        self, container: Mapping[str, Any], env: Mapping[str, str], restart: bool
    ) -> dict[str, Any]:
        import ray

        spec: ContainerSpec = container["spec"]
        home = Path(tempfile.gettempdir()) / NODE_DIR_NAME / "workers" / self.worker_id
        home.mkdir(parents=True, exist_ok=True)
        full_env = {
            "PYTHONUNBUFFERED": "1",
            **env,
            "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in self.gpus),
        }
        marker = full_env[MARKER_ENV] = new_marker()
        sink = worker_sink(full_env) or _NoSink()
        self.started_at = time.time()
        engine_env = inherited_env(os.environ)
        engine = _node_engine(container.get("engine"), engine_env)
        header = (
            f"--- podium: worker {self.worker_id} {'restart' if restart else 'start'} on Ray "
            f"node {ray.get_runtime_context().get_node_id()[:12]}, GPUs "
            f"[{full_env['CUDA_VISIBLE_DEVICES']}]: image {spec.image} ---"
        )
        if engine is None:
            self.shipper = LogShipper(None, sink, name=self.worker_id).start()
            self.shipper.note(header)
            self.shipper.note("--- podium: no container engine (podman or docker) on this node ---")
            self.shipper.finish(give_up_s=SHIP_WAIT_S)
            self.shipper.join(SHIP_WAIT_S)
            self.code = EXIT_SPAWN_FAILED
            return self.describe()
        owner = str(container.get("owner") or "")
        _remove_slot_leftovers(engine, owner, self.endpoint_id, self.slot, engine_env)
        volume = None
        if spec.volume_id is not None and container.get("volume_root"):
            volume = volume_dir(str(container["volume_root"]), spec.volume_id)
            Path(volume).mkdir(parents=True, exist_ok=True)
        creds = container.get("creds")
        run = ContainerRun(
            spec,
            name=f"podium-{self.worker_id}-{secrets.token_hex(3)}",
            owner=owner,
            endpoint_id=self.endpoint_id,
            worker_id=self.worker_id,
            slot=self.slot,
            volume_dir=volume,
            creds=(str(creds[0]), str(creds[1])) if creds else None,
        )
        pulls = _node_pulls(engine, engine_env)
        self.proc = spawn_container(engine, run, full_env, engine_env, self.gpus, pulls, home)
        self.engine = engine.describe()
        self.shipper = LogShipper(self.proc.stdout, sink, marker=marker, name=self.worker_id)
        self.shipper.note(header)
        self.shipper.start()
        return self.describe()

    def describe(self) -> dict[str, Any]:
        import ray

        return {
            "endpoint_id": self.endpoint_id,
            "worker_id": self.worker_id,
            "slot": self.slot,
            "pid": self.proc.pid if self.proc is not None else None,
            "node": ray.get_runtime_context().get_node_id(),
            "address": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
            "gpus": list(self.gpus),
            "started_at": self.started_at,
            "draining": self.draining,
            "code": self.poll()["code"],
        }

    def poll(self) -> dict[str, Any]:
        """{"code": exit code or None, "tail": the last lines of its output once ended,
        "note", "engine", "restore_s": restored from a snapshot in this long}."""
        restore_s = None
        if isinstance(self.proc, SnapshotProcess):
            restore_s = self.proc.restored_s
            if self.shipper is not None:
                self.proc.flush_notes(self.shipper.note)
        if self.code is None and self.proc is not None:
            code = self.proc.poll()
            if code is not None:
                self.code = code
                if self.shipper is not None:
                    self.shipper.wait_eof(EOF_WAIT_S)
                    self.shipper.note(
                        f"--- podium: worker {self.worker_id} exited with code {code} ---"
                    )
                    self.shipper.finish(give_up_s=SHIP_WAIT_S)
                    self.shipper.join(SHIP_WAIT_S)
        tail: list[str] = []
        if self.code is not None and self.shipper is not None:
            tail = self.shipper.recent()[-TAIL_LINES:]
        note = self.proc.note if self.proc is not None and self.code is None else None
        return {
            "code": self.code,
            "tail": tail,
            "note": note,
            "engine": self.engine,
            "restore_s": restore_s,
            "pid": self.proc.pid if self.proc is not None else None,  # a restore's, once up
        }

    def terminate(self) -> None:
        """A drain: SIGTERM; the worker finishes its job and exits."""
        self.draining = True
        if self.proc is not None:
            self.proc.terminate()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()


# One engine and one set of pulls per node process of slot actors (Ray reuses a worker
# process for several actors on a node only when told to; each slot finds its own).
_ENGINES: dict[str | None, Engine | None] = {}
_PULLS: dict[str, ImagePulls] = {}


_SNAPSHOTTER: list[Snapshotter | None] = []  # this node process's, once looked for


def _node_snapshotter() -> Snapshotter | None:
    """This node's snapshots (CRIU >= 4 and root, else None): images under the node's
    temp directory, bounded by the node's PODIUM_SNAPSHOT_* settings."""
    if not _SNAPSHOTTER:
        root = Path(tempfile.gettempdir()) / NODE_DIR_NAME / "snapshots"
        _SNAPSHOTTER.append(Snapshotter.from_settings(FleetSettings.from_env(), root))
    return _SNAPSHOTTER[0]


def _node_engine(choice: str | None, env: Mapping[str, str]) -> Engine | None:
    if choice not in _ENGINES:
        _ENGINES[choice] = find_engine(choice, env)
    return _ENGINES[choice]


def _node_pulls(engine: Engine, env: Mapping[str, str]) -> ImagePulls:
    if engine.path not in _PULLS:
        _PULLS[engine.path] = ImagePulls(engine, env)
    return _PULLS[engine.path]


def _remove_slot_leftovers(
    engine: Engine, owner: str, endpoint_id: str, slot: int, env: Mapping[str, str]
) -> None:
    """A container of this slot an ended actor left on this node (its actor died, the
    engine kept the container): removed before this one starts, so none holds a GPU."""
    argv = [
        engine.path,
        "ps",
        "--all",
        "--filter",
        f"label={LABEL_OWNER}={owner}",
        "--filter",
        f"label={LABEL_ENDPOINT}={endpoint_id}",
        "--filter",
        f"label={LABEL_SLOT}={slot}",
        "--format",
        "{{.Names}}",
    ]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        names = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        if names.stdout.split():
            subprocess.run(
                remove_argv(engine.path, names.stdout.split()),
                capture_output=True,
                timeout=120,
                env=env,
            )
