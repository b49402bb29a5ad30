"""The Ray backend: each worker slot is a named, detached Ray actor (fleet/rayslot.py).

Imported only when the fleet is `ray` (this module imports `ray`).

- Naming: `<endpoint id>.<slot>` in the Ray namespace `podium` (PODIUM_RAY_NAMESPACE):
  at most workersMax actors per endpoint even with two controllers, and a new controller
  finds every running worker by listing the namespace (`adopt`).
- Resources: `num_gpus` = gpuCount (a CPU worker asks for one CPU instead); Ray picks the
  node and the GPUs, and the worker gets Ray's GPU ids in CUDA_VISIBLE_DEVICES. Actors
  are spread over the nodes (`SPREAD`).
- GPU types (`gpuIds` as type names or a minimum memory): a node declares its GPUs' type
  as a Ray custom resource `podium_gpu:<name>:<MiB>` with the count of such GPUs, e.g.
  `ray start --num-gpus 2 --resources '{"podium_gpu:NVIDIA A100 80GB:81920": 2}'`; a
  worker then also asks for gpuCount of the matching resource. GPU indices in gpuIds are
  for the local fleet only.
- Throttled: an actor Ray has not placed while the cluster lacks the resources is
  `throttled` with the reason; Ray's autoscaler reads exactly that pending demand.
- Failures: a worker whose actor or node died reads as exit code -9 (a crash: replaced
  wherever capacity exists); its job comes back through the store's lease.

All Ray calls run in a thread (`asyncio.to_thread`): they block on the network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayError

from podium.board import Gpu, Inventory, SnapshotSummary
from podium.codec import ascii_digits
from podium.endpoints.gpu_ids import parse_gpu_ids
from podium.fleet.backend import Adopted, Placement, Slot
from podium.fleet.containers import ContainerHost
from podium.fleet.rayslot import WorkerSlot
from podium.fleet.settings import FleetSettings

__all__ = ["GPU_RESOURCE_PREFIX", "RayBackend", "RaySlot", "actor_name", "parse_actor_name"]

log = logging.getLogger("podium.fleet")

GPU_RESOURCE_PREFIX = "podium_gpu:"
LOST = -9  # the exit code of a worker whose actor or node died
_ADOPT_WAIT_S = 5.0
_POLL_WAIT_S = 0.2


def actor_name(endpoint_id: str, slot: int) -> str:
    return f"{endpoint_id}.{slot}"


def parse_actor_name(name: str) -> tuple[str, int] | None:
    endpoint_id, _, slot = name.rpartition(".")
    return (endpoint_id, int(slot)) if endpoint_id and ascii_digits(slot) else None


@dataclass(frozen=True, slots=True)
class _Kind:
    """A GPU type some node declares (`podium_gpu:<name>:<MiB>`)."""

    resource: str
    name: str
    memory_mb: int


def _kind(resource: str) -> _Kind | None:
    if not resource.startswith(GPU_RESOURCE_PREFIX):
        return None
    name, _, memory = resource[len(GPU_RESOURCE_PREFIX) :].rpartition(":")
    return _Kind(resource, name or "GPU", int(memory)) if ascii_digits(memory) else None


class RaySlot:
    """The controller's handle on one slot actor; its state comes from the last refresh."""

    def __init__(
        self,
        handle: Any,
        demand: dict[str, float],
        start_ref: Any = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.handle = handle
        self.demand = demand  # what the actor asks Ray for (for the throttled reason)
        self.start_ref = start_ref
        self.poll_ref: Any = None
        self.info = info
        self.code: int | None = info["code"] if info else None
        self.tail: list[str] = []
        self.waiting: str | None = None
        self.note: str | None = None  # what it waits for (its image's pull)
        self.released = False
        # restored from its node's snapshot (fleet/snapshots.py): how long that took
        self.restore_s: float | None = None

    @property
    def pid(self) -> int | None:
        return self.info["pid"] if self.info else None

    @property
    def node(self) -> str:
        return str(self.info["node"]) if self.info else ""

    @property
    def address(self) -> str:
        return str(self.info.get("address") or "127.0.0.1") if self.info else "127.0.0.1"

    @property
    def gpus(self) -> tuple[int, ...]:
        return tuple(self.info["gpus"]) if self.info and self.code is None else ()

    def poll(self) -> int | None:
        return self.code

    def terminate(self) -> None:
        if self.info is None:
            # Not placed yet: nothing runs, so ending the actor stops nothing.
            self.release()
            self.code = 0
            return
        self.handle.terminate.remote()

    def kill(self) -> None:
        if self.info is None:
            self.terminate()
        else:
            self.handle.kill.remote()

    def last_lines(self, n: int) -> list[str]:
        return self.tail[-n:]

    def release(self) -> None:
        if not self.released:
            self.released = True
            try:
                ray.kill(self.handle, no_restart=True)
            except (RayError, ValueError) as exc:  # gone already
                log.debug("ending a slot actor: %s", exc)

    def _lost(self, exc: BaseException) -> None:
        self.code = LOST
        self.tail = [f"its Ray actor or node is gone: {type(exc).__name__}: {exc}"[:500]]
        self.waiting = None


class RayBackend:
    name = "ray"
    shared = True

    def __init__(self, settings: FleetSettings, containers: ContainerHost | None = None) -> None:
        """`containers`: how image workers run (their credentials are read here, on the
        controller, and given to the slot actor with the start call; never on a command
        line)."""
        self.settings = settings
        self._containers = containers
        self._engine: str | None = None  # as the nodes' slot actors last reported it
        self._actor = ray.remote(WorkerSlot)
        self._inventory: Inventory | None = None
        self._kinds: list[_Kind] = []
        self._totals: list[dict[str, float]] = []  # each alive node's resources
        self._available: dict[str, float] = {}
        self._connected = ray.is_initialized()

    async def _connect(self) -> None:
        """Join the cluster on first use (not at the gateway's start: the API serves while
        Ray is slow or away, and the supervisor's next pass tries again)."""
        if self._connected:
            return
        address = self.settings.ray_init_address
        await asyncio.to_thread(
            ray.init,
            address=address,
            namespace=self.settings.ray_namespace,
            log_to_driver=False,
            logging_level=logging.WARNING,
            ignore_reinit_error=True,
        )
        self._connected = True
        log.info("fleet: connected to the Ray cluster at %s", address)

    # --- Backend ------------------------------------------------------------------------

    async def refresh(self, slots: Sequence[Slot]) -> None:
        await self._connect()
        ours = [s for s in slots if isinstance(s, RaySlot)]
        await asyncio.to_thread(self._refresh, ours)

    def inventory(self) -> Inventory | None:
        return self._inventory

    def engine(self) -> str | None:
        return self._engine

    def snapshots(self, live: Collection[str]) -> Mapping[str, SnapshotSummary] | None:
        """Each node's slot actors take and restore their own (fleet/rayslot.py): asked for
        unless PODIUM_SNAPSHOTS=off; the images and counts stay on the nodes (a restored
        worker shows its restore time in the workers list; images of deleted endpoints
        go when the node's bound evicts them)."""
        return None if self.settings.snapshots == "off" else {}

    def _container(self, p: Placement) -> dict[str, Any] | None:
        """What the slot actor needs to run the placement's image on its node."""
        spec, host = p.container, self._containers
        if spec is None:
            return None
        creds = None
        if host is not None and spec.registry_id is not None:
            creds = host.credentials(spec.registry_id)
        return {
            "spec": spec,
            "owner": host.owner if host is not None else "",
            "engine": self.settings.container_engine,
            "volume_root": host.volume_root if host is not None else None,
            "creds": creds,
        }

    def place(self, p: Placement) -> RaySlot | str:
        if not self._connected:  # the supervisor refreshes (and so connects) first
            return "not connected to the Ray cluster yet"
        request = parse_gpu_ids(p.gpu_ids)
        if p.gpu_count and request.indices is not None:
            return (
                f"gpuIds {p.gpu_ids!r} lists GPU indices, which only the local fleet "
                "honours: on Ray use GPU type names or a minimum memory (or leave it empty)"
            )
        resources: dict[str, float] = {}
        label = "cpu"
        if p.gpu_count:
            label = self._kinds[0].name if len({k.name for k in self._kinds}) == 1 else "GPU"
            if request.names is not None or request.min_memory_mb is not None:
                fit = [k for k in self._kinds if request.matches(0, k.name, k.memory_mb)]
                if not fit:
                    return (
                        f"no node of the Ray cluster declares a GPU that matches gpuIds "
                        f"{p.gpu_ids!r} (a node declares its GPU type as the resource "
                        f"'{GPU_RESOURCE_PREFIX}<name>:<MiB>'; see docs/deployment.md)"
                    )
                kind = max(fit, key=lambda k: self._available.get(k.resource, 0.0))
                resources[kind.resource] = float(p.gpu_count)
                label = kind.name
        options: dict[str, Any] = {
            "name": actor_name(p.endpoint_id, p.slot),
            "namespace": self.settings.ray_namespace,
            "lifetime": "detached",
            "num_gpus": p.gpu_count,
            "num_cpus": 0 if p.gpu_count else 1,
            "max_restarts": 0,
            "scheduling_strategy": "SPREAD",
        }
        if resources:
            options["resources"] = resources
        try:
            # Any, as RaySlot.handle: Ray types an actor's methods as `.remote`-able only
            # when each is decorated with @ray.method (rayslot.py imports ray on the node)
            handle: Any = self._actor.options(**options).remote(p.endpoint_id, p.worker_id, p.slot)
        except ValueError:  # ActorAlreadyExistsError: the slot's last actor is still ending
            return (
                f"the previous worker of slot {p.slot} of this endpoint is still stopping; "
                "this one starts once it is gone"
            )
        start = handle.start.remote(
            list(p.argv), dict(p.env(label)), p.restart, self._container(p), p.snapshot
        )
        demand = {"GPU": float(p.gpu_count)} if p.gpu_count else {"CPU": 1.0}
        return RaySlot(handle, {**demand, **resources}, start_ref=start)

    async def adopt(self) -> list[Adopted]:
        await self._connect()
        return await asyncio.to_thread(self._adopt)

    async def close(self) -> None:
        # Detached actors outlive this driver: the workers keep serving.
        if self._connected:
            await asyncio.to_thread(ray.shutdown)

    # --- in a thread --------------------------------------------------------------------

    def _refresh(self, slots: list[RaySlot]) -> None:
        self._read_cluster()
        live = [s for s in slots if s.code is None and not s.released]
        # 1. placements: the start call returns once Ray placed the actor and it started
        starting = [s for s in live if s.info is None and s.start_ref is not None]
        if starting:
            ready, _ = ray.wait(
                [s.start_ref for s in starting], num_returns=len(starting), timeout=0
            )
            done = set(ready)
            for s in starting:
                if s.start_ref in done:
                    try:
                        s.info = ray.get(s.start_ref)
                        s.code, s.waiting = s.info["code"], None
                    except RayError as exc:
                        s._lost(exc)
                else:
                    s.waiting = self._why_waiting(s.demand)
        # 2. running workers: has the process ended? (one outstanding call per slot)
        placed = [s for s in live if s.info is not None and s.code is None]
        for s in placed:
            if s.poll_ref is None:
                s.poll_ref = s.handle.poll.remote()
        if placed:
            ready, _ = ray.wait(
                [s.poll_ref for s in placed], num_returns=len(placed), timeout=_POLL_WAIT_S
            )
            done = set(ready)
            for s in placed:
                if s.poll_ref not in done:
                    continue
                ref, s.poll_ref = s.poll_ref, None
                try:
                    answer = ray.get(ref)
                except RayError as exc:
                    s._lost(exc)
                    continue
                s.note = answer.get("note")
                s.restore_s = answer.get("restore_s")
                if s.info is not None and answer.get("pid") is not None:
                    s.info["pid"] = answer["pid"]  # a restored worker has one once it is up
                if answer.get("engine"):
                    self._engine = str(answer["engine"])
                if answer["code"] is not None:
                    s.code, s.tail = answer["code"], answer["tail"]

    def _read_cluster(self) -> None:
        # ray leaves nodes() and available_resources() unannotated
        nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        self._available = ray.available_resources()  # type: ignore[no-untyped-call]
        self._totals = [dict(n.get("Resources", {})) for n in nodes]
        gpus: list[Gpu] = []
        kinds: dict[str, _Kind] = {}
        for n in sorted(nodes, key=lambda n: n["NodeID"]):
            resources = n.get("Resources", {})
            declared = [k for k in map(_kind, resources) if k is not None]
            names = [
                (k.name, k.memory_mb) for k in declared for _ in range(int(resources[k.resource]))
            ]
            for i in range(int(resources.get("GPU", 0))):
                name, memory = names[i] if i < len(names) else ("GPU", 0)
                gpus.append(Gpu(i, name, memory, n["NodeID"]))
            kinds.update({k.resource: k for k in declared})
        self._kinds = sorted(kinds.values(), key=lambda k: (k.memory_mb, k.name))
        warning = None if gpus else "No GPU in the Ray cluster: only CPU workers can be placed."
        self._inventory = Inventory(tuple(gpus), "ray", warning)

    def _why_waiting(self, demand: dict[str, float]) -> str | None:
        """Why Ray has not placed an actor yet, or None while it may be starting."""
        need = ", ".join(f"{v:g} {k}" for k, v in demand.items())
        if not any(all(t.get(k, 0.0) >= v for k, v in demand.items()) for t in self._totals):
            return (
                f"no node of the Ray cluster has {need}; the worker waits for one "
                "(Ray's autoscaler, where configured, adds nodes for this pending demand)"
            )
        if any(self._available.get(k, 0.0) < v for k, v in demand.items()):
            return (
                f"every GPU of the Ray cluster this endpoint may use is held ({need} "
                "needed); the worker waits for Ray to place it"
            )
        return None

    def _adopt(self) -> list[Adopted]:
        found: list[tuple[str, int, Any]] = []
        for name in ray.util.list_named_actors():
            parsed = parse_actor_name(name)
            if parsed is None:
                continue
            try:
                found.append((*parsed, ray.get_actor(name, namespace=self.settings.ray_namespace)))
            except ValueError:  # ended meanwhile
                continue
        refs = [h.describe.remote() for _, _, h in found]
        done: set[Any] = set()
        if refs:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=_ADOPT_WAIT_S)
            done = set(ready)
        adopted: list[Adopted] = []
        for (endpoint_id, index, handle), ref in zip(found, refs, strict=True):
            info: dict[str, Any] | None = None
            if ref in done:
                try:
                    info = ray.get(ref)
                except RayError:
                    info = None
            slot = RaySlot(handle, {}, info=info)
            if info is None or info["code"] is not None:
                # Never placed (nothing runs) or its worker ended: free the slot.
                slot.release()
                continue
            adopted.append(
                Adopted(
                    endpoint_id=endpoint_id,
                    worker_id=info["worker_id"],
                    slot_index=index,
                    started_at=info["started_at"],
                    draining=info["draining"],
                    slot=slot,
                )
            )
        return adopted
