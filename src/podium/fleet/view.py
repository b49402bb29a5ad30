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
from urllib.parse import urlencode

from podium.clock import Clock
from podium.endpoints import EndpointSpec
from podium.fleet.catalog import TemplateCatalog
from podium.fleet.scaling import QueueStats
from podium.fleet.status import FleetBoard, FleetReport
from podium.fleet.templates import Launch, launch_for
from podium.keys import derive_worker_token
from podium.settings import Settings
from podium.store import JobStore
from podium.store.base import WorkerInfo

__all__ = ["FleetEndpoint", "FleetView", "LocalFleetView", "queue_stats", "worker_env"]

log = logging.getLogger("podium.fleet")


@dataclass(frozen=True, slots=True)
class FleetEndpoint:
    """An endpoint whose workers the supervisor runs."""

    id: str
    spec: EndpointSpec
    launch: Launch | None  # None: its template is gone (`problem` says so)
    problem: str | None = None


class FleetView(Protocol):
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


def worker_env(
    gateway_url: str,
    endpoint_id: str,
    worker_id: str,
    gpu: str,
    token: str,
    ping_interval_ms: int,
) -> dict[str, str]:
    """Every variable a RunPod SDK worker (or Podium's runtime) needs, PROTOCOL.md §2."""
    base = f"{gateway_url.rstrip('/')}/v2/{endpoint_id}"
    q = "?" + urlencode({"gpu": gpu})
    return {
        "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID{q}",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID{q}",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID{q}",
        "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID{q}",
        "RUNPOD_AI_API_KEY": token,
        "RUNPOD_POD_ID": worker_id,
        "RUNPOD_ENDPOINT_ID": endpoint_id,
        "RUNPOD_PING_INTERVAL": str(ping_interval_ms),
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "PODIUM_WORKER_GPU": gpu,
    }


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
    ) -> None:
        self.store = store
        self.settings = settings
        self.fleet_secret = fleet_secret
        self.board = board
        self.clock = clock
        self.catalog = TemplateCatalog(store)
        host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        # Local workers talk to this process directly, not through public_url's proxy.
        self.gateway_url = f"http://{host}:{settings.port}"

    async def endpoints(self) -> list[FleetEndpoint]:
        out: list[FleetEndpoint] = []
        for ep in await self.store.list_endpoints():
            spec = ep.spec
            if not spec.managed:
                continue
            template = None
            if spec.template_id not in ("sd15", "custom"):
                template = await self.catalog.get(spec.template_id or "")
                if template is None:
                    problem = f"template {spec.template_id} no longer exists"
                    out.append(FleetEndpoint(ep.id, spec, None, problem))
                    continue
            out.append(FleetEndpoint(ep.id, spec, launch_for(spec, template)))
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
