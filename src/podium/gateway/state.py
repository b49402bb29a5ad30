"""What every route needs, built once by create_app and reached as app.state.podium."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from starlette.requests import Request

from podium.board import FleetAccess, FleetBoard, WorkerEntry, worker_entries
from podium.clock import Clock
from podium.endpoints import Endpoint
from podium.errors import NotFound
from podium.gateway.http import BodyDecoder
from podium.gateway.instance import InstanceGuard
from podium.gateway.lifecycle import JobLifecycle
from podium.gateway.lookups import Lookups
from podium.gateway.metrics import MeteredFleetBoard, Metrics
from podium.gateway.ratelimit import RateLimiter
from podium.gateway.webhooks import WebhookSender
from podium.jobs import DEFAULT_LIMITS, Job, Limits
from podium.settings import Settings
from podium.store import JobStore
from podium.store.records import TemplateCatalog

if TYPE_CHECKING:
    from podium.gateway.lb_proxy import LbRouter
    from podium.gateway.reaper import Reaper
    from podium.gateway.series import SeriesWriter

__all__ = ["GatewayState", "state_of"]


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
    series: SeriesWriter | None = None  # writes the metrics over time (set by create_app)
    lb: LbRouter | None = None  # load-balancing endpoints' proxy (made on first use)
    log_followers: dict[str, int] = field(default_factory=dict)  # endpoint -> open follows
    lookups: Lookups = field(init=False)
    lifecycle: JobLifecycle = field(init=False)  # what the routes do to jobs

    def __post_init__(self) -> None:
        self.lookups = Lookups(self.store)
        self.lifecycle = JobLifecycle(
            self.store, self.metrics, self.webhooks, self.lookups, self.clock
        )
        # The board the fleet publishes on counts cold starts. `fleet` is None here unless
        # given (its default); its declared type holds from here on.
        if cast("FleetBoard | None", self.fleet) is None:
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


def state_of(request: Request) -> GatewayState:
    """The gateway's state, as create_app left it on the app: what every route reads."""
    state: GatewayState = request.app.state.podium
    return state
