"""create_app: the gateway's composition root.

The gateway runs no workers itself: what runs beside it (the fleet) is handed in as
`services` by the server module (podium.server), which wires gateway and fleet together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from podium import __version__
from podium.clock import Clock, SystemClock
from podium.gateway import admin_api, client_api, console, me_api, worker_api
from podium.gateway.auth import authorize_client, ensure_admin_key, ensure_fleet_secret
from podium.gateway.errors import install_error_handlers
from podium.gateway.http import JSON
from podium.gateway.ratelimit import RateLimiter
from podium.gateway.reaper import Reaper
from podium.gateway.state import GatewayState
from podium.gateway.webhooks import WebhookSender
from podium.keys import Scope
from podium.settings import Settings
from podium.store import JobStore, open_store

__all__ = ["Service", "create_app"]

log = logging.getLogger("podium.gateway")


class Service(Protocol):
    """Something that runs beside the gateway, started once its state exists (the fleet)."""

    async def start(self, state: GatewayState) -> None: ...

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
) -> FastAPI:
    """Build the gateway. Tests pass their own store and clock and may turn off the
    background reaper (then they call `reap_once` themselves). `services` start with the
    background tasks (podium.server passes the fleet) and stop before the store closes."""
    clock = clock or SystemClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal store
        if store is None:
            store = open_store(settings.store_url, clock)
        state = GatewayState(
            settings=settings,
            store=store,
            clock=clock,
            limiter=RateLimiter(clock, enabled=settings.rate_limits),
            webhooks=WebhookSender(
                allow_private=settings.allow_private_webhooks,
                max_attempts=settings.webhook_max_attempts,
                backoff_s=settings.webhook_backoff_s,
            ),
        )
        app.state.podium = state
        if not settings.insecure_no_auth:
            admin_key = await ensure_admin_key(store, settings.data_dir, clock.now())
            app.state.new_admin_key = admin_key
            if admin_key:
                where = settings.data_dir / "admin.key"
                log.warning("Created the admin API key; it is in %s", where)
        state.fleet_secret = await ensure_fleet_secret(store)
        state.webhooks.start()
        tasks = []
        started: list[Service] = []
        if run_background:
            state.reaper = Reaper(state, settings.reaper_interval_s)
            tasks.append(asyncio.create_task(state.reaper.run()))
            for service in services:
                await service.start(state)
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
            await store.close()

    app = FastAPI(
        title="Podium",
        version=__version__,
        description="Self-hosted serverless inference, wire-compatible with RunPod Serverless.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(client_api.router)
    app.include_router(worker_api.router)
    app.include_router(me_api.router)
    app.include_router(admin_api.router)
    console.mount(app)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse(console.CONSOLE_PATH + "/")

    @app.get("/healthz", tags=["ops"], summary="Liveness and store reachability")
    async def healthz(request: Request) -> JSON:
        state: GatewayState = request.app.state.podium
        await state.store.ping()
        reaper = state.reaper.describe() if state.reaper else None
        return JSON({"ok": True, "version": __version__, "reaper": reaper})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        state: GatewayState = request.app.state.podium
        await authorize_client(request, Scope.READ)
        body = await state.metrics.render(state.store, state.clock.now() - state.settings.lease_s)
        return Response(body, media_type="text/plain; version=0.0.4")

    return app
