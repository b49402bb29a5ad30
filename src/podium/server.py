"""The server: a gateway and the fleet beside it, wired together (`podium serve`, `podium up`).

The gateway (podium.gateway) knows nothing of how workers are placed; the fleet
(podium.fleet) knows nothing of HTTP routes. This module builds both from their settings,
hands the fleet to the gateway as a service, and runs the result under uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import FastAPI
from rich.console import Console

from podium.clock import Clock, SystemClock
from podium.errors import PodiumError
from podium.fleet.service import Fleet
from podium.fleet.settings import FleetSettings
from podium.gateway import create_app
from podium.gateway.bootstrap import bootstrap
from podium.settings import Settings
from podium.store import JobStore, open_store

__all__ = ["build_app", "run_server"]

Before = Callable[[JobStore, Clock], Awaitable[None]]
T = TypeVar("T")

err = Console(stderr=True)


def build_app(
    settings: Settings, fleet: FleetSettings, clock: Clock | None = None
) -> tuple[FastAPI, Fleet]:
    """The gateway, and the fleet that runs beside it as its service."""
    service = Fleet(fleet)
    app = create_app(settings, clock=clock, services=[service], fleet_access=service)
    return app, service


def run_server(
    settings: Settings, fleet: FleetSettings, log_level: str, before: Before | None = None
) -> None:
    """Bootstrap (gateway/bootstrap.py: data dir, store instance, the admin key printed
    once), run `before(store, clock)` if given, then serve until interrupted."""
    import uvicorn

    clock = SystemClock()
    if settings.insecure_no_auth:
        err.print("[yellow]warning[/yellow]: --insecure-no-auth: every request is accepted.")
    try:
        boot = asyncio.run(
            _with_store(settings, clock, lambda s: bootstrap(s, settings, clock.now()))
        )
    except PodiumError as exc:  # e.g. the store lost its data (gateway/instance.py)
        err.print(f"[red]error[/red]: {exc.message}")
        raise SystemExit(1) from None
    if boot.admin_key:
        err.print(
            f"[bold]Admin API key[/bold] (shown once; also in {settings.data_dir / 'admin.key'}):"
        )
        print(boot.admin_key, flush=True)
    if before is not None:
        prepare = before
        asyncio.run(_with_store(settings, clock, lambda s: prepare(s, clock)))
    _log_fleet(log_level)
    what = (
        f"{fleet.backend} fleet, supervisor every {fleet.tick_s:g} s"
        if fleet.enabled
        else "no supervisor"
    )
    err.print(f"Podium gateway on {settings.base_url} (store: {settings.store_url}; {what})")
    app, service = build_app(settings, fleet, clock)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # Workers first: they stop long-polling, so the graceful shutdown that
            # waits for open requests ends at once.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon_threadsafe(service.begin_stop)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        # Workers elsewhere may hold 30 s long-polls open: do not wait for them to end.
        timeout_graceful_shutdown=5,
    )
    Server(config).run()


async def _with_store(
    settings: Settings, clock: Clock, fn: Callable[[JobStore], Awaitable[T]]
) -> T:
    store = open_store(settings.store_url, clock, sqlite_sync=settings.sqlite_sync)
    try:
        return await fn(store)
    finally:
        await store.close()


def _log_fleet(level: str) -> None:
    """The fleet's INFO lines (workers started, ready, drained) go to stderr."""
    logger = logging.getLogger("podium.fleet")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        chosen = logging.getLevelName(level.upper())
        logger.setLevel(chosen if isinstance(chosen, int) else logging.INFO)
        logger.propagate = False
