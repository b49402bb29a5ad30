"""create_app: the gateway's composition root.

The gateway runs no workers itself: what runs beside it (the fleet) is handed in as
`services` by the server module (podium.server), which wires gateway and fleet together:
a service gets a ServiceHost (the store, settings, clock, the board it publishes on and the
fleet secret), never the gateway's state, and the routes reach the fleet only through the
`fleet_access` handle (board.FleetAccess) the server passes in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from podium import __version__
from podium.board import FleetAccess, FleetBoard
from podium.clock import Clock, SystemClock
from podium.gateway import (
    admin_api,
    client_api,
    console,
    graphql_api,
    history_api,
    lb_proxy,
    logs_api,
    me_api,
    openai_api,
    ops_api,
    rest_v2,
    rest_v2_serverless,
    series_api,
    worker_api,
)
from podium.gateway.bootstrap import bootstrap
from podium.gateway.errors import install_error_handlers
from podium.gateway.http import BodyDecoder
from podium.gateway.metrics import Metrics
from podium.gateway.ratelimit import RateLimiter
from podium.gateway.reaper import Reaper
from podium.gateway.series import SeriesWriter
from podium.gateway.state import GatewayState
from podium.gateway.webhooks import WebhookSender
from podium.settings import ADMIN_KEY_FILE, Settings
from podium.store import JobStore, open_store

__all__ = ["Service", "ServiceHost", "create_app"]

log = logging.getLogger("podium.gateway")


@dataclass(frozen=True, slots=True)
class ServiceHost:
    """What a service beside the gateway is given when the gateway starts."""

    settings: Settings
    store: JobStore
    clock: Clock
    board: FleetBoard  # the fleet publishes its reports here; the routes read them
    fleet_secret: str


class Service(Protocol):
    """Something that runs beside the gateway, started once its store is open (the fleet)."""

    async def start(self, host: ServiceHost) -> None: ...

    def begin_stop(self) -> None:
        """The server was told to stop: end at once what holds requests open (workers'
        long-polls). Called on the event loop; `stop()` follows."""
        ...

    async def stop(self) -> None: ...


def create_app(
    settings: Settings,
    store: JobStore | None = None,
    clock: Clock | None = None,
    *,
    run_background: bool = True,
    services: Sequence[Service] = (),
    fleet_access: FleetAccess | None = None,
) -> FastAPI:
    """Build the gateway. Tests pass their own store and clock and may turn off the
    background reaper (then they call `reap_once` themselves). `services` start with the
    background tasks (podium.server passes the fleet) and stop before the store closes;
    `fleet_access` is what the routes may ask the fleet (its GPUs)."""
    clock = clock or SystemClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal store
        if store is None:
            store = open_store(settings.store_url, clock, sqlite_sync=settings.sqlite_sync)
        boot = await bootstrap(store, settings, clock.now())
        app.state.new_admin_key = boot.admin_key
        if boot.admin_key:
            log.warning(
                "Created the admin API key; it is in %s", settings.data_dir / ADMIN_KEY_FILE
            )
        metrics = Metrics(clock)
        state = GatewayState(
            settings=settings,
            store=store,
            clock=clock,
            limiter=RateLimiter(clock, enabled=settings.rate_limits),
            webhooks=WebhookSender(
                allow_private=settings.allow_private_webhooks,
                max_attempts=settings.webhook_max_attempts,
                backoff_s=settings.webhook_backoff_s,
                on_outcome=metrics.webhook,
            ),
            metrics=metrics,
            guard=boot.guard,
            fleet_secret=boot.fleet_secret,
            fleet_access=fleet_access,
            decoder=BodyDecoder(settings.decode_off_loop_bytes),
        )
        app.state.podium = state
        state.webhooks.start()
        tasks = []
        started: list[Service] = []
        state.series = SeriesWriter(state, settings.metrics_flush_s)
        if run_background:
            state.reaper = Reaper(state, settings.reaper_interval_s)
            tasks.append(asyncio.create_task(state.reaper.run()))
            tasks.append(asyncio.create_task(state.series.run()))
            host = ServiceHost(settings, store, clock, state.fleet, boot.fleet_secret)
            for service in services:
                await service.start(host)
                started.append(service)
        try:
            yield
        finally:
            for service in reversed(started):
                await service.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await state.webhooks.stop()
            if state.lb is not None:
                await state.lb.close()
            state.decoder.close()
            await store.close()

    app = FastAPI(
        title="Podium",
        version=__version__,
        description="Self-hosted serverless inference, wire-compatible with RunPod Serverless.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(lb_proxy.LbProxy)  # inside: a lost store refuses these too
    app.add_middleware(ops_api.RefuseWhileStoreLost)
    app.include_router(ops_api.router)
    app.include_router(rest_v2.router)  # before the client API's /v2/{endpoint_id}/...
    app.include_router(rest_v2_serverless.router)
    app.include_router(client_api.router)
    app.include_router(history_api.router)
    app.include_router(series_api.router)
    app.include_router(openai_api.router)
    app.include_router(worker_api.router)
    app.include_router(me_api.router)
    app.include_router(logs_api.router)
    app.include_router(admin_api.router)
    app.include_router(admin_api.reader)
    app.include_router(graphql_api.router)
    app.include_router(lb_proxy.router)
    console.mount(app)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse(console.CONSOLE_PATH + "/")

    return app
