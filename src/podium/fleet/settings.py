"""The supervisor's settings: built once at the entry point (`podium serve` / `up`) and
passed to create_app. Every environment variable it reads is named here and only here:

    PODIUM_SUPERVISOR          true (default) / false: start local workers at all
    PODIUM_SUPERVISOR_TICK_S   seconds between two passes of the supervisor (default 0.5)
    PODIUM_GPUS                the GPU inventory instead of discovery: `none` (CPU workers),
                               or nvidia-smi lines `index, name, memory MiB` separated by `;`
    PODIUM_FLEET               where workers run: `local` (default: processes on this
                               machine), `ray` (the Ray cluster this machine belongs to,
                               `ray.init(address="auto")`), or `ray://HOST:PORT` (Ray Client)
    PODIUM_CPU_WORKERS         CPU workers (gpuCount 0, or any worker on a machine without
                               GPUs) the local fleet runs at once; more wait `throttled`
                               (default: one per core, at most one per 2 GiB of memory,
                               at least 4). On Ray each asks the cluster for one CPU.
    PODIUM_CONTAINER_ENGINE    the engine image workers run on: `podman`, `docker` or a path
                               (default: podman, else docker, found on PATH)
    PODIUM_WORKER_INIT_TIMEOUT_S  a worker not ready this long after its start (its image's
                               pull included) is given up: a start-up failure (default 420,
                               RunPod's 7 minutes)
    PODIUM_SNAPSHOTS           `auto` (default): flashboot endpoints' workers are checkpointed
                               and restored (docs/snapshots.md) when CRIU >= 4 is found and
                               the gateway runs as root; `off`: never
    PODIUM_CRIU                the criu binary (default: `criu` on PATH if >= 4, else the one
                               tools/build-criu.sh caches)
    PODIUM_SNAPSHOT_MAX_GB     disk the snapshots of this host may use in all (default 20)
    PODIUM_SNAPSHOT_ENDPOINT_MAX_GB  one endpoint's snapshot at most (default 8)
    PODIUM_FLEET_LOCK_S        with Ray, the lease of the store lock whose holder drives
                               the fleet (default 5 s): how soon another gateway takes over
    PODIUM_RAY_NAMESPACE       the Ray namespace of the worker actors (default `podium`): one
                               per Podium installation sharing a Ray cluster
    RAY_ADDRESS                Ray's own variable: the cluster `ray` joins (instead of auto)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from podium.fleet.gpus import discover

__all__ = ["ENV", "FleetSettings", "default_cpu_workers"]

ENV = {
    "PODIUM_SUPERVISOR": "enabled",
    "PODIUM_SUPERVISOR_TICK_S": "tick_s",
    "PODIUM_GPUS": "gpus",
    "PODIUM_FLEET": "backend",
    "PODIUM_CPU_WORKERS": "cpu_workers",
    "PODIUM_CONTAINER_ENGINE": "container_engine",
    "PODIUM_WORKER_INIT_TIMEOUT_S": "init_timeout_s",
    "PODIUM_SNAPSHOTS": "snapshots",
    "PODIUM_CRIU": "criu",
    "PODIUM_SNAPSHOT_MAX_GB": "snapshot_max_gb",
    "PODIUM_SNAPSHOT_ENDPOINT_MAX_GB": "snapshot_endpoint_max_gb",
    "PODIUM_FLEET_LOCK_S": "lock_lease_s",
    "PODIUM_RAY_NAMESPACE": "ray_namespace",
    "RAY_ADDRESS": "ray_address",
}


def default_cpu_workers() -> int:
    """What this machine holds: one CPU worker per core, at most one per 2 GiB of memory,
    and at least 4 (a worker that waits on I/O costs little)."""
    cores = os.cpu_count() or 1
    try:
        memory_gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError):
        memory_gib = 2.0 * cores
    return max(4, min(cores, int(memory_gib // 2)))


class FleetSettings(BaseModel):
    enabled: bool = True
    tick_s: float = 0.5
    # Workers one pass starts (and restarts) at most; the others wait for the next passes.
    starts_per_tick: int = Field(default=4, ge=1, le=100)
    cpu_workers: int = Field(default_factory=default_cpu_workers, ge=1, le=10_000)
    container_engine: str | None = None  # None: podman, else docker on PATH
    init_timeout_s: float = Field(default=420.0, gt=0)  # RunPod gives a worker 7 minutes
    gpus: str | None = None  # None: discover
    startup_crash_limit: int = 3  # consecutive crashes before ready -> unhealthy
    backoff_base_s: float = 1.0  # restart delays 1, 2, 4 ... backoff_cap_s
    backoff_cap_s: float = 60.0
    stable_s: float = 60.0  # up this long: the crash count starts again from zero
    drain_extra_s: float = 30.0  # a drained worker is killed after executionTimeout + this
    shutdown_grace_s: float = 5.0  # on gateway shutdown: SIGTERM, this long, then SIGKILL
    delete_grace_s: float = 5.0  # the endpoint was deleted: SIGTERM, this long, SIGKILL
    backend: str = "local"  # local | ray | ray://HOST:PORT
    snapshots: Literal["auto", "off"] = "auto"
    criu: str | None = None  # None: found (fleet/snapshots.find_criu)
    snapshot_max_gb: float = Field(default=20.0, gt=0, le=100_000)
    snapshot_endpoint_max_gb: float = Field(default=8.0, gt=0, le=100_000)
    lock_lease_s: float = 5.0  # shared (Ray) fleets: the fleet lock's lease
    ray_address: str | None = None  # RAY_ADDRESS
    ray_namespace: str = "podium"  # the slot actors' Ray namespace

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        value = value.strip()
        if value in ("local", "ray") or (value.startswith("ray://") and len(value) > 6):
            return value
        raise ValueError(
            f"--fleet / PODIUM_FLEET must be 'local', 'ray' or 'ray://HOST:PORT', got {value!r}"
        )

    @property
    def ray(self) -> bool:
        return self.backend != "local"

    @property
    def ray_init_address(self) -> str:
        """What `ray.init` is given: ray://HOST:PORT, RAY_ADDRESS, or `auto`."""
        if self.backend.startswith("ray://"):
            return self.backend
        return self.ray_address or "auto"

    @field_validator("gpus")
    @classmethod
    def _inventory_reads(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            discover(value)  # a configured inventory is only parsed: fails loudly here
        return value

    @field_validator("tick_s")
    @classmethod
    def _positive_tick(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"the supervisor tick must be positive, got {value:g} s")
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> FleetSettings:
        env = os.environ if env is None else env
        values: dict[str, object] = {name: env[var] for var, name in ENV.items() if var in env}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
