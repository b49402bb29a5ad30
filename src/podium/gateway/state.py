"""What every route needs, built once by create_app and reached as app.state.podium."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from podium.clock import Clock
from podium.endpoints import Endpoint
from podium.endpoints.catalog import TemplateCatalog
from podium.errors import NotFound
from podium.fleet.status import FleetAccess, FleetBoard, WorkerEntry, worker_entries
from podium.gateway.http import BodyDecoder
from podium.gateway.instance import InstanceGuard
from podium.gateway.lookups import Lookups
from podium.gateway.metrics import MeteredFleetBoard, Metrics
from podium.gateway.ratelimit import RateLimiter
from podium.gateway.webhooks import WebhookSender
from podium.jobs import DEFAULT_LIMITS, Job, Limits, status_object
from podium.settings import Settings
from podium.store import JobStore

if TYPE_CHECKING:
    from podium.gateway.reaper import Reaper

__all__ = ["GatewayState"]


@dataclass
class GatewayState:
    settings: Settings
    store: JobStore
    clock: Clock
    limiter: RateLimiter
    webhooks: WebhookSender
    guard: InstanceGuard
    decoder: BodyDecoder = field(default_factory=BodyDecoder)
    metrics: Metrics = field(default_factory=Metrics)
    limits: Limits = DEFAULT_LIMITS
    # Workers: the fleet's latest report (in memory; the fleet beside this gateway writes it
    # here), what routes may ask the fleet (None: no fleet runs beside this gateway), and
    # the secret the fleet's worker tokens derive from.
    fleet: FleetBoard = field(default=None)  # type: ignore[assignment]
    fleet_access: FleetAccess | None = None
    fleet_secret: str | None = None
    reaper: Reaper | None = None  # set when background tasks run
    log_followers: dict[str, int] = field(default_factory=dict)  # endpoint -> open follows
    lookups: Lookups = field(init=False)

    def __post_init__(self) -> None:
        self.lookups = Lookups(self.store)
        if self.fleet is None:  # the board the fleet publishes on counts cold starts
            self.fleet = MeteredFleetBoard(metrics=self.metrics)

    @property
    def templates(self) -> TemplateCatalog:
        return TemplateCatalog(self.store)

    async def endpoint(self, endpoint_id: str, fresh: bool = False) -> Endpoint:
        """The endpoint (NotFound if none); `fresh` bypasses the lookup cache (writes)."""
        if fresh:
            endpoint = await self.store.get_endpoint(endpoint_id)
        else:
            endpoint = await self.lookups.endpoint(endpoint_id)
        if endpoint is None:
            await self.guard.verify()
            raise NotFound(f"Endpoint {endpoint_id} does not exist.")
        return endpoint

    async def workers(self, endpoint_id: str) -> list[WorkerEntry]:
        """The endpoint's workers: the fleet's view merged with the workers the store saw
        within a lease (those started elsewhere too)."""
        alive_since = self.clock.now() - self.settings.lease_s
        return worker_entries(
            self.fleet.of(endpoint_id),
            await self.store.workers(endpoint_id, alive_since),
            self.fleet.stopped_of(endpoint_id),
        )

    async def job(self, endpoint_id: str, job_id: str) -> Job:
        job = await self.store.get(job_id)
        if job is None or job.endpoint_id != endpoint_id:
            raise NotFound(
                f"Job {job_id} does not exist on endpoint {endpoint_id} (or its retention ran out)."
            )
        return job

    async def announce_final(self, job: Job) -> None:
        """A job reached a final status: count it and fire its webhook."""
        self.metrics.ended(job)
        if job.webhook:
            endpoint = await self.lookups.endpoint(job.endpoint_id)
            if endpoint is not None:
                self.webhooks.send(
                    job.webhook,
                    status_object(job, self.clock.now()),
                    endpoint.webhook_secret,
                    endpoint_id=job.endpoint_id,
                )
