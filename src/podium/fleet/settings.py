"""The supervisor's settings: built once at the entry point (`podium serve` / `up`) and
passed to create_app. Every environment variable it reads is named here and only here:

    PODIUM_SUPERVISOR          true (default) / false: start local workers at all
    PODIUM_SUPERVISOR_TICK_S   seconds between two passes of the supervisor (default 0.5)
    PODIUM_GPUS                the GPU inventory instead of discovery: `none` (CPU workers),
                               or nvidia-smi lines `index, name, memory MiB` separated by `;`
    PODIUM_FLEET               where workers run: `local` (default: processes on this
                               machine), `ray` (the Ray cluster this machine belongs to,
                               `ray.init(address="auto")`), or `ray://HOST:PORT` (Ray Client)
    PODIUM_FLEET_LOCK_S        with Ray, the lease of the store lock whose holder drives
                               the fleet (default 5 s): how soon another gateway takes over
    RAY_ADDRESS                Ray's own variable: the cluster `ray` joins (instead of auto)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, field_validator

from podium.fleet.gpus import discover

__all__ = ["ENV", "RAY_NAMESPACE", "FleetSettings"]

ENV = {
    "PODIUM_SUPERVISOR": "enabled",
    "PODIUM_SUPERVISOR_TICK_S": "tick_s",
    "PODIUM_GPUS": "gpus",
    "PODIUM_FLEET": "backend",
    "PODIUM_FLEET_LOCK_S": "lock_lease_s",
    "RAY_ADDRESS": "ray_address",
}

RAY_NAMESPACE = "podium"  # the Ray namespace of the slot actors


class FleetSettings(BaseModel):
    enabled: bool = True
    tick_s: float = 0.5
    gpus: str | None = None  # None: discover
    startup_crash_limit: int = 3  # consecutive crashes before ready -> unhealthy
    backoff_base_s: float = 1.0  # restart delays 1, 2, 4 ... backoff_cap_s
    backoff_cap_s: float = 60.0
    stable_s: float = 60.0  # up this long: the crash count starts again from zero
    drain_extra_s: float = 30.0  # a drained worker is killed after executionTimeout + this
    shutdown_grace_s: float = 5.0  # on gateway shutdown: SIGTERM, this long, then SIGKILL
    delete_grace_s: float = 5.0  # the endpoint was deleted: SIGTERM, this long, SIGKILL
    log_max_bytes: int = 10 * 1024 * 1024  # a Ray slot's log file is rotated past this
    backend: str = "local"  # local | ray | ray://HOST:PORT
    lock_lease_s: float = 5.0  # shared (Ray) fleets: the fleet lock's lease
    ray_address: str | None = None  # RAY_ADDRESS

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
