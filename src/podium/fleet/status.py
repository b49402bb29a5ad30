"""What supervisors report about their workers, and how /health counts workers. Pure.

The embedded supervisor writes its report into the gateway's memory (`FleetBoard`, held
by GatewayState); a per-host agent would POST the same records over HTTP. The store's
worker records (who pinged, who holds jobs) are merged in by `health_counts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.fleet.gpus import Inventory
from podium.fleet.scaling import Phase
from podium.store.base import WorkerInfo

__all__ = [
    "WORKER_STATES",
    "FleetAccess",
    "FleetBoard",
    "FleetReport",
    "WorkerStatus",
    "health_counts",
]

WORKER_STATES = ("idle", "initializing", "ready", "running", "throttled", "unhealthy")


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One supervised worker, as its supervisor sees it."""

    id: str
    endpoint_id: str
    phase: Phase
    gpus: tuple[int, ...] = ()
    pid: int | None = None
    restarts: int = 0
    started_at: float | None = None
    ready_at: float | None = None
    exit_code: int | None = None  # of the last exit
    reason: str | None = None  # throttled / unhealthy / draining: why, in one sentence
    log: str | None = None  # the log file (on its node)
    node: str = ""  # where it runs: a host name (local) or a Ray node id (ray)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "phase": self.phase.value,
            "gpus": list(self.gpus),
            "pid": self.pid,
            "restarts": self.restarts,
            "startedAt": self.started_at,
            "readyAt": self.ready_at,
            "exitCode": self.exit_code,
            "reason": self.reason,
            "node": self.node,
        }


@dataclass(frozen=True, slots=True)
class FleetReport:
    """One supervisor's view, as it publishes it after every pass."""

    workers: dict[str, list[WorkerStatus]]  # by endpoint
    stopped: dict[str, dict[str, float]]  # by endpoint: worker -> when it exited
    inventory: Inventory | None


@dataclass
class FleetBoard:
    """The latest report of the supervisor(s), kept in the gateway's memory."""

    supervised: bool = False  # a supervisor runs in this gateway
    inventory: Inventory | None = None
    workers: dict[str, list[WorkerStatus]] = field(default_factory=dict)  # by endpoint
    stopped: dict[str, dict[str, float]] = field(default_factory=dict)
    updated_at: float | None = None

    def publish(self, report: FleetReport, now: float) -> None:
        self.workers = report.workers
        self.stopped = report.stopped
        if report.inventory is not None:
            self.inventory = report.inventory
        self.updated_at = now

    def of(self, endpoint_id: str) -> list[WorkerStatus]:
        return list(self.workers.get(endpoint_id, ()))

    def stopped_of(self, endpoint_id: str) -> dict[str, float]:
        return dict(self.stopped.get(endpoint_id, {}))

    def gpu_holders(self) -> dict[tuple[str, int], str]:
        """(node, GPU index) -> the worker holding it."""
        return {(w.node, g): w.id for ws in self.workers.values() for w in ws for g in w.gpus}


class FleetAccess(Protocol):
    """What the gateway's routes may ask of the fleet beside them (never to drive it)."""

    async def inventory(self) -> Inventory:
        """The GPUs workers can be placed on (discovered once)."""
        ...


def health_counts(
    supervised: Iterable[WorkerStatus],
    seen: Iterable[WorkerInfo],
    stopped: Mapping[str, float] | None = None,
) -> dict[str, int]:
    """RunPod's worker counts: the supervisor's phases for the workers it runs, the store's
    records (holds a job: running, else idle) for the ones that are up, and for workers
    started elsewhere. A worker the supervisor saw exit is not counted, though its last
    ping keeps its store record alive for a lease (`stopped`: worker -> exit time)."""
    counts = dict.fromkeys(WORKER_STATES, 0)
    gone = stopped or {}
    by_id = {
        w.worker_id: w for w in seen if w.worker_id not in gone or w.last_seen > gone[w.worker_id]
    }
    for s in supervised:
        info = by_id.pop(s.id, None)
        if s.phase in (Phase.STARTING, Phase.BACKOFF):
            counts["initializing"] += 1
        elif s.phase is Phase.THROTTLED:
            counts["throttled"] += 1
        elif s.phase is Phase.UNHEALTHY:
            counts["unhealthy"] += 1
        elif info is not None and info.jobs:
            counts["running"] += 1
        else:
            counts["idle"] += 1
    for w in by_id.values():
        if w.state in ("unhealthy", "initializing", "throttled"):
            counts[w.state] += 1
        elif w.jobs:
            counts["running"] += 1
        else:
            counts["idle"] += 1
    counts["ready"] = counts["idle"] + counts["running"]
    return counts
