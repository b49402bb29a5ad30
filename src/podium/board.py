"""The board: the records that cross between the gateway and the fleet. Pure: no I/O.

Like cog's `eventtypes.py` (every message that crosses a process boundary in one file),
everything the fleet reports and the gateway reads lives here, so that neither side imports
the other:

    Phase, WorkerStatus   a supervised worker's life, as its supervisor sees it
    FleetReport           one supervisor pass's view (the fleet publishes it)
    FleetBoard            the latest report, kept in the gateway's memory
    FleetAccess           what the gateway's routes may ask the fleet (its GPUs)
    Gpu, Inventory        the GPUs workers can be placed on
    WorkerInfo            the store's record of a worker's pings and the jobs it holds
    WorkerEntry           one worker of an endpoint as the API lists it (`worker_entries`
                          merges the fleet's view with the store's records: the one place
                          that names a worker's RunPod status; /health counts them)
    EXIT_CANNOT_START     the exit code (and CANNOT_START the log line) of a worker whose
                          handler cannot be built: the supervisor does not restart it

Arrows (docs/ARCHITECTURE.md, tests/test_layers.py): this module imports only the domain;
the gateway (podium.gateway) and the fleet (podium.fleet) both import it; the store
imports it for WorkerInfo; the worker runtime for the exit codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from podium.clock import iso_time

__all__ = [
    "CANNOT_START",
    "EXIT_CANNOT_START",
    "RUNPOD_STATUSES",
    "WORKER_STATES",
    "FleetAccess",
    "FleetBoard",
    "FleetReport",
    "Gpu",
    "Inventory",
    "Phase",
    "SnapshotSummary",
    "WorkerEntry",
    "WorkerInfo",
    "WorkerStatus",
    "health_counts",
    "summary",
    "worker_entries",
]

EXIT_CANNOT_START = 78  # the handler cannot be built (EX_CONFIG): restarting will not help
CANNOT_START = "podium.worker: cannot start: "  # the log line that says why


class Phase(StrEnum):
    """A supervised worker's life. /health maps these to RunPod's worker states."""

    STARTING = "starting"  # process started, not yet seen by the gateway (initializing)
    READY = "ready"  # seen by the gateway: idle or running
    BACKOFF = "backoff"  # crashed; restarts when its backoff ends (initializing)
    THROTTLED = "throttled"  # wanted, but no free GPU
    DRAINING = "draining"  # told to stop: finishes its job, then exits
    UNHEALTHY = "unhealthy"  # crashed at start-up too often; not restarted


@dataclass(frozen=True, slots=True)
class Gpu:
    index: int
    name: str
    memory_mb: int
    node: str = ""  # the machine (host name) or Ray node id it is on

    def public(self) -> dict[str, object]:
        return {
            "index": self.index,
            "name": self.name,
            "memoryMb": self.memory_mb,
            "node": self.node,
        }


@dataclass(frozen=True, slots=True)
class Inventory:
    gpus: tuple[Gpu, ...]
    source: str  # config | nvidia-smi | torch | none | ray
    warning: str | None = None

    @property
    def cpu_only(self) -> bool:
        return not self.gpus


@dataclass(slots=True)
class WorkerInfo:
    """The store's record of a worker: when it was last seen (a ping or a poll), what it
    said of itself, and the jobs it holds now."""

    endpoint_id: str
    worker_id: str
    last_seen: float
    jobs: int = 0  # jobs it holds now
    state: str = "idle"  # idle | running | unhealthy (set by the worker) ...
    info: dict[str, Any] = field(default_factory=dict)
    job_ids: tuple[str, ...] = ()  # the jobs it holds now, sorted (`jobs` counts them)


# RunPod's worker statuses; /health adds `ready` (idle + running).
RUNPOD_STATUSES = ("running", "idle", "initializing", "throttled", "unhealthy")
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
    node: str = ""  # where it runs: a host name (local) or a Ray node id (ray)
    # load-balancing workers: their health check's verdict, requests in flight (every
    # gateway's), and the cold start (first 204 to first 200)
    health: str | None = None
    in_flight: int = 0
    cold_start_s: float | None = None
    version: int | None = None  # the endpointVersion it was started for
    restore_s: float | None = None  # restored from a snapshot, in this long (else None)
    # found running by this controller (a restarted gateway, a new Ray fleet holder):
    # its start happened elsewhere, so its first contact here is no cold start
    adopted: bool = False


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """One endpoint's snapshots on a fleet (docs/snapshots.md): the images it keeps, and
    how its workers came up since the fleet started."""

    images: int = 0
    bytes: int = 0
    restored: int = 0  # workers restored from an image
    failed: int = 0  # restores that failed (each then started normally)
    dumped: int = 0  # images taken
    dump_failed: int = 0  # dumps that failed (or were over the bound): the worker went on
    restore_p50_s: float | None = None
    restore_p90_s: float | None = None

    def public(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "bytes": self.bytes,
            "restored": self.restored,
            "restoreFailures": self.failed,
            "taken": self.dumped,
            "takeFailures": self.dump_failed,
            "restoreP50Seconds": self.restore_p50_s,
            "restoreP90Seconds": self.restore_p90_s,
        }


@dataclass(frozen=True, slots=True)
class FleetReport:
    """One supervisor's view, as it publishes it after every pass."""

    workers: dict[str, list[WorkerStatus]]  # by endpoint
    stopped: dict[str, dict[str, float]]  # by endpoint: worker -> when it exited
    inventory: Inventory | None
    engine: str | None = None  # the container engine image workers run on ("podman 4.3.1")
    snapshots: dict[str, SnapshotSummary] = field(default_factory=dict)  # by endpoint


@dataclass
class FleetBoard:
    """The latest report of the supervisor(s), kept in the gateway's memory."""

    supervised: bool = False  # a supervisor runs in this gateway
    inventory: Inventory | None = None
    workers: dict[str, list[WorkerStatus]] = field(default_factory=dict)  # by endpoint
    stopped: dict[str, dict[str, float]] = field(default_factory=dict)
    updated_at: float | None = None
    engine: str | None = None  # the container engine image workers run on
    snapshots: dict[str, SnapshotSummary] = field(default_factory=dict)  # by endpoint

    def publish(self, report: FleetReport, now: float) -> None:
        self.workers = report.workers
        self.stopped = report.stopped
        self.engine = report.engine
        self.snapshots = report.snapshots
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

    async def snapshots(self) -> list[dict[str, Any]] | None:
        """The snapshot images this host keeps (docs/snapshots.md), each as the API shows
        it; None when this fleet takes none."""
        ...

    async def delete_snapshot(self, key: str) -> bool:
        """Delete one image (False: there is none of that key)."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerEntry:
    """One worker of an endpoint as the API lists it: what the fleet says about it (None:
    started elsewhere, e.g. by hand) merged with the store's record of its pings and
    the jobs it holds (None: it has not been seen yet)."""

    id: str
    status: str  # RunPod's: running | idle | initializing | throttled | unhealthy
    supervised: WorkerStatus | None
    seen: WorkerInfo | None

    @property
    def job_ids(self) -> tuple[str, ...]:
        return self.seen.job_ids if self.seen is not None else ()

    def public(self, now: float, show_jobs: bool = True) -> dict[str, Any]:
        """RunPod's worker fields (id, status, gpuCount, startedAt, uptimeSeconds) and
        Podium's (node, gpus, jobs, readyAt, restarts, reason, managed, lastSeen, and
        the fleet's phase, pid and exitCode). `show_jobs=False` leaves the job ids out
        (they let a key read those jobs' results)."""
        s, seen = self.supervised, self.seen
        gpus = list(s.gpus) if s is not None else []
        started = s.started_at if s is not None else None
        reason = s.reason if s is not None else None
        if reason is None and seen is not None and self.status == "unhealthy":
            reason = seen.info.get("reason")
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "node": (s.node if s is not None else "") or None,
            "gpus": gpus,
            "gpuCount": len(gpus),
            "jobs": list(self.job_ids) if show_jobs else None,
            "jobCount": len(self.job_ids),
            "startedAt": None if started is None else iso_time(started),
            "readyAt": None if s is None or s.ready_at is None else iso_time(s.ready_at),
            "uptimeSeconds": None if started is None else max(0, int(now - started)),
            "restarts": s.restarts if s is not None else 0,
            "reason": reason,
            "managed": s is not None,
            "lastSeen": None if seen is None else iso_time(seen.last_seen),
            "startup": _startup(seen),
            "phase": None if s is None else s.phase.value,
            "pid": None if s is None else s.pid,
            "exitCode": None if s is None else s.exit_code,
        }
        if s is not None and s.restore_s is not None:  # restored from a snapshot
            body["startedFrom"] = "snapshot"
            body["restoreSeconds"] = round(s.restore_s, 3)
        if s is not None and s.health is not None:  # a load-balancing worker
            body["health"] = s.health
            body["inFlight"] = s.in_flight
            body["coldStartSeconds"] = s.cold_start_s
        return body


def _startup(seen: WorkerInfo | None) -> dict[str, str | None] | None:
    """When the worker's process began, its runtime was up and its handler built, as
    Podium's runtime reports them on its pings (worker/startup.py); None for workers that
    do not (the runpod SDK's)."""
    if seen is None or "loadedAt" not in seen.info:
        return None
    return {
        name: None if seen.info.get(name) is None else iso_time(float(seen.info[name]))
        for name in ("execAt", "bootedAt", "loadedAt")
    }


def _status(supervised: WorkerStatus | None, seen: WorkerInfo | None) -> str:
    """RunPod's worker status: the fleet's phase for the workers it runs (a ready or
    draining one is running while it holds a job, else idle; one drained before it was
    ever ready, holding no job, could serve nothing: throttled if it was never placed,
    else initializing); the worker's own report for the workers started elsewhere."""
    if supervised is not None:
        phase = supervised.phase
        holds = (seen is not None and seen.jobs > 0) or supervised.in_flight > 0
        if phase is Phase.DRAINING and supervised.ready_at is None and not holds:
            placed = supervised.pid is not None or bool(supervised.gpus)
            phase = Phase.STARTING if placed else Phase.THROTTLED
        if phase in (Phase.STARTING, Phase.BACKOFF):
            return "initializing"
        if phase is Phase.THROTTLED:
            return "throttled"
        if phase is Phase.UNHEALTHY or supervised.health == "unhealthy":
            return "unhealthy"
        if supervised.in_flight > 0:
            return "running"
    elif seen is not None and seen.state in ("unhealthy", "initializing", "throttled"):
        return seen.state
    return "running" if seen is not None and seen.jobs else "idle"


def worker_entries(
    supervised: Iterable[WorkerStatus],
    seen: Iterable[WorkerInfo],
    stopped: Mapping[str, float] | None = None,
) -> list[WorkerEntry]:
    """An endpoint's workers: the fleet's (in its order), then the ones only the store has
    seen (started elsewhere), by id. A worker the fleet saw exit is left out, though its
    last ping keeps its store record alive for a lease (`stopped`: worker -> exit time);
    a ping after the exit brings it back."""
    gone = stopped or {}
    by_id = {
        w.worker_id: w for w in seen if w.worker_id not in gone or w.last_seen > gone[w.worker_id]
    }
    out: list[WorkerEntry] = []
    for s in supervised:
        info = by_id.pop(s.id, None)
        out.append(WorkerEntry(s.id, _status(s, info), s, info))
    for worker_id in sorted(by_id):
        info = by_id[worker_id]
        out.append(WorkerEntry(worker_id, _status(None, info), None, info))
    return out


def summary(entries: Iterable[WorkerEntry]) -> dict[str, int]:
    """RunPod's roll-up of a workers list: a count per status, and `total`."""
    counts = dict.fromkeys(RUNPOD_STATUSES, 0)
    for e in entries:
        counts[e.status] += 1
    counts["total"] = sum(counts.values())
    return counts


def health_counts(entries: Iterable[WorkerEntry]) -> dict[str, int]:
    """/health's worker counts: the entries' statuses counted, and `ready` (idle +
    running)."""
    counts = summary(entries)
    counts["ready"] = counts["idle"] + counts["running"]
    return {state: counts[state] for state in WORKER_STATES}
