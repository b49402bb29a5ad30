"""The fleet interface: what the supervisor (the one controller loop, fleet/supervisor.py)
asks of a backend that turns its decisions into running workers.

    local   fleet/local.py        processes on this machine (the embedded default)
    ray     fleet/raycluster.py   one named, detached Ray actor per worker slot
                                  (fleet/rayslot.py), anywhere in a Ray cluster

The supervisor decides (scaling.py: how many; it also owns restarts, backoff, drains and
readiness); a backend only places one worker (`place`), reports how it runs (`Slot`),
and, when its workers outlive the controller (`shared`), hands existing ones to a new
controller (`adopt`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from podium.board import Inventory, SnapshotSummary
from podium.endpoints.containers import ContainerSpec
from podium.fleet.settings import ENV as FLEET_ENV
from podium.settings import ENV as GATEWAY_ENV

__all__ = ["Adopted", "Backend", "Placement", "Slot", "inherited_env"]

# The gateway's own variables are not the workers' business (a store URL may hold a
# password); RUNPOD_* are set per worker.
_GATEWAY_ONLY = {*GATEWAY_ENV, *FLEET_ENV, "PODIUM_API_KEY", "PODIUM_URL", "PODIUM_LOG_LEVEL"}


def inherited_env(env: Mapping[str, str]) -> dict[str, str]:
    """What a worker inherits from the process that starts it: not RUNPOD_*, not the
    gateway's settings, not Ray's own variables."""
    return {
        k: v
        for k, v in env.items()
        if not k.startswith(("RUNPOD_", "RAY_")) and k not in _GATEWAY_ONLY
    }


@dataclass(frozen=True, slots=True)
class Placement:
    """One worker to start: the backend adds the inherited environment, an isolated HOME
    and CUDA_VISIBLE_DEVICES (the GPUs it chose), and keeps the output."""

    endpoint_id: str
    worker_id: str
    slot: int  # 0 .. workersMax-1 within the endpoint: names the Ray actor
    argv: tuple[str, ...]
    # The template's env and the RUNPOD_* variables, given the GPU label the backend
    # chose (its type name, or "cpu": it goes into the worker URLs' `gpu=`).
    env: Callable[[str], Mapping[str, str]]
    gpu_ids: str  # the endpoint's gpuIds (endpoints/gpu_ids.py)
    gpu_count: int  # 0: a CPU worker
    restart: bool = False
    # flashboot: start it checkpointable, restored from a snapshot when there is one
    snapshot: bool = False
    # A container worker (endpoints/containers.py): `argv` is then empty; the backend runs
    # the image through the host's engine (fleet/containers.py)
    container: ContainerSpec | None = None


class Slot(Protocol):
    """One placed worker, as its backend sees it. Calls never block on I/O: a remote
    backend answers from what its last `refresh` learnt."""

    @property
    def pid(self) -> int | None: ...
    @property
    def node(self) -> str:
        """Where it runs: a host name (local) or a Ray node id."""
        ...

    @property
    def address(self) -> str:
        """The IP address its node's servers answer on (a load-balancing worker's)."""
        ...

    @property
    def gpus(self) -> tuple[int, ...]:
        """The GPU indices it holds on its node (empty while not placed)."""
        ...

    @property
    def waiting(self) -> str | None:
        """Why it is not running yet (no capacity: `throttled`), or None."""
        ...

    @property
    def note(self) -> str | None:
        """What it does before its worker runs (pulling its image), or None."""
        ...

    def poll(self) -> int | None:
        """Its exit code once it ended (a lost node reads as -9), else None."""
        ...

    def terminate(self) -> None:
        """A drain: SIGTERM, the worker finishes its job and exits."""
        ...

    def kill(self) -> None: ...
    def last_lines(self, n: int) -> list[str]:
        """The last lines of its output (after it ended: why it could not start)."""
        ...

    def release(self) -> None:
        """It ended and the supervisor noted it: free what held it (a Ray actor)."""
        ...

    @property
    def restore_s(self) -> float | None:
        """Restored from a snapshot (fleet/snapshots.py): how long that took; else None."""
        ...


@dataclass(frozen=True, slots=True)
class Adopted:
    """A worker a previous controller started that still runs (shared backends)."""

    endpoint_id: str
    worker_id: str
    slot_index: int
    started_at: float | None  # wall clock; None: not placed yet
    draining: bool
    slot: Slot


class Backend(Protocol):
    name: str
    # Workers belong to a cluster, not to this process: only the holder of the store's
    # fleet lock drives them, they outlive it, and the next holder adopts them.
    shared: bool

    async def refresh(self, slots: Sequence[Slot]) -> None:
        """Learn the state of these slots (the supervisor's) and of the cluster's GPUs
        (once per supervisor pass)."""
        ...

    def inventory(self) -> Inventory | None:
        """The GPUs workers can be placed on (None until the first refresh)."""
        ...

    def place(self, placement: Placement) -> Slot | str:
        """Start one worker, or say in one sentence why it cannot be placed now."""
        ...

    def engine(self) -> str | None:
        """The container engine image workers run on ("podman 4.3.1"), None without one."""
        ...

    def snapshots(self, live: Collection[str]) -> Mapping[str, SnapshotSummary] | None:
        """Its snapshots by endpoint (blocking I/O: called in a thread), the images of
        endpoints not in `live` deleted; None when it takes none (no CRIU, not root,
        turned off)."""
        ...

    async def adopt(self) -> list[Adopted]:
        """Workers that run without a controller (a new controller takes them over)."""
        ...

    async def close(self) -> None: ...
