"""FleetView: everything the supervisor needs from a gateway, and nothing more.

The supervisor runs inside `podium serve` today (LocalFleetView reads the store directly).
The same Protocol over HTTP makes it a per-host agent on GPU machines later: endpoints and
queue stats from an admin route, worker env derived from the gateway URL and the fleet
secret (given to the agent by configuration), and `publish` posting the agent's report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from podium.board import FleetBoard, FleetReport, WorkerInfo
from podium.clock import Clock
from podium.endpoints import BUILTIN_TEMPLATES, EndpointSpec
from podium.endpoints.templates import Launch, launch_for
from podium.endpoints.worker_env import worker_env
from podium.fleet.scaling import QueueStats
from podium.keys import derive_worker_token
from podium.settings import Settings
from podium.store import JobStore
from podium.store.records import LbLoad, LbLoads, TemplateCatalog

__all__ = ["FleetEndpoint", "FleetView", "LocalFleetView", "queue_stats"]

log = logging.getLogger("podium.fleet")


@dataclass(frozen=True, slots=True)
class FleetEndpoint:
    """An endpoint whose workers the supervisor runs."""

    id: str
    spec: EndpointSpec
    launch: Launch | None  # None: its template is gone (`problem` says so)
    problem: str | None = None
    version: int = 1  # its endpointVersion: workers of an older one are replaced


class FleetView(Protocol):
    volume_root: str  # network volumes: <root>/<id> (a process worker gets its path)
    lease_s: float  # how long a worker's registry record lives (announce renews it)

    async def endpoints(self) -> list[FleetEndpoint]:
        """Endpoints with a template (managed workers)."""
        ...

    async def queue(self, endpoint_id: str) -> QueueStats: ...

    async def workers(self, endpoint_id: str) -> list[WorkerInfo]:
        """Workers the gateway saw recently (pinged or polled within a lease)."""
        ...

    def worker_env(self, endpoint_id: str, worker_id: str, gpu: str) -> dict[str, str]:
        """The RUNPOD_* variables (PROTOCOL.md §2) for one worker."""
        ...

    def publish(self, report: FleetReport) -> None:
        """The supervisor's current view of its workers (for /health and /v1/...)."""
        ...

    async def hold_lock(self, name: str, owner: str, lease_s: float) -> bool:
        """Take or renew the store lock `name` (one controller for a shared fleet)."""
        ...

    async def lb_loads(self) -> dict[str, LbLoad]:
        """Load-balancing endpoints' requests, waiting and in flight, summed over every
        gateway, by endpoint (one read a pass)."""
        ...

    async def announce(
        self, endpoint_id: str, worker_id: str, state: str, info: dict[str, object]
    ) -> None:
        """A load-balancing worker's health and address, for every gateway's proxy (the
        store's worker registry: it lives a lease)."""
        ...


async def queue_stats(store: JobStore, endpoint_id: str, now: float) -> QueueStats:
    """Normal and lowPriority queued jobs, jobs in progress, the oldest normal wait."""
    c = await store.counts(endpoint_id)
    oldest = c.oldest_queued_at
    return QueueStats(
        queued=c.in_queue - c.in_queue_low,
        queued_low=c.in_queue_low,
        in_progress=c.in_progress,
        oldest_wait_s=max(0.0, now - oldest) if oldest is not None else 0.0,
    )


class LocalFleetView:
    """The supervisor inside the gateway: reads the store, writes the board in memory."""

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        fleet_secret: str,
        board: FleetBoard,
        clock: Clock,
        *,
        remote_workers: bool = False,
    ) -> None:
        self.store = store
        self.settings = settings
        self.fleet_secret = fleet_secret
        self.board = board
        self.clock = clock
        self.catalog = TemplateCatalog(store)
        self.volume_root = str(settings.volume_root)
        self.lease_s = settings.lease_s
        # Local workers talk to this process directly, not through public_url's proxy;
        # workers on other machines (Ray) through the public URL (a load balancer in
        # front of every gateway, so that they outlive this one).
        self.gateway_url = settings.base_url if remote_workers else settings.local_url

    async def endpoints(self) -> list[FleetEndpoint]:
        out: list[FleetEndpoint] = []
        for ep in await self.store.list_endpoints():
            spec = ep.spec
            if not spec.managed:
                continue
            template = None
            if spec.template_id is not None and spec.template_id not in BUILTIN_TEMPLATES:
                template = await self.catalog.get(spec.template_id)
                if template is None:
                    problem = f"template {spec.template_id} no longer exists"
                    out.append(FleetEndpoint(ep.id, spec, None, problem))
                    continue
            out.append(FleetEndpoint(ep.id, spec, launch_for(spec, template), version=ep.version))
        return out

    async def queue(self, endpoint_id: str) -> QueueStats:
        return await queue_stats(self.store, endpoint_id, self.clock.now())

    async def workers(self, endpoint_id: str) -> list[WorkerInfo]:
        return await self.store.workers(endpoint_id, self.clock.now() - self.settings.lease_s)

    def worker_env(self, endpoint_id: str, worker_id: str, gpu: str) -> dict[str, str]:
        token = derive_worker_token(self.fleet_secret, endpoint_id)
        return worker_env(
            self.gateway_url, endpoint_id, worker_id, gpu, token, self.settings.ping_interval_ms
        )

    def publish(self, report: FleetReport) -> None:
        self.board.publish(report, self.clock.now())

    async def hold_lock(self, name: str, owner: str, lease_s: float) -> bool:
        return await self.store.hold_lock(name, owner, lease_s)

    async def lb_loads(self) -> dict[str, LbLoad]:
        return await LbLoads(self.store).read(self.clock.now())

    async def announce(
        self, endpoint_id: str, worker_id: str, state: str, info: dict[str, object]
    ) -> None:
        await self.store.heartbeat(
            endpoint_id, worker_id, [], self.settings.lease_s, state=state, info=info
        )
