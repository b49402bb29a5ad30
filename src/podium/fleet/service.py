"""The fleet beside a gateway: started and stopped with it (gateway.app.Service), and what
its routes may ask (board.FleetAccess).

The gateway hands it a FleetHost when it starts — the store, the settings, the clock, the
board it publishes its reports on, the fleet secret — never its own state: the fleet
imports nothing of the gateway, and podium.server is the one module that wires the two.

With `FleetSettings.enabled` the supervisor runs here and drives the chosen backend:
`local` (processes on this machine) or `ray` (actors across a Ray cluster; `ray` is
imported only then). Without, the fleet only answers what GPUs there are (an injected or
discovered inventory) and nothing starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from pathlib import Path
from typing import Any, Protocol

from podium.board import FleetBoard, Inventory
from podium.clock import Clock
from podium.fleet.backend import Backend
from podium.fleet.containers import ContainerHost
from podium.fleet.gpus import discover
from podium.fleet.local import LocalBackend
from podium.fleet.settings import FleetSettings
from podium.fleet.snapshots import Snapshotter
from podium.fleet.supervisor import Supervisor
from podium.fleet.view import LocalFleetView
from podium.keys import installation_id
from podium.settings import Settings
from podium.store import JobStore
from podium.store.records import RegistryPasswords

log = logging.getLogger("podium.fleet")

__all__ = ["Fleet", "FleetHost"]


class FleetHost(Protocol):
    """What the gateway gives the fleet beside it (gateway.app.ServiceHost is one)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def store(self) -> JobStore: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def board(self) -> FleetBoard:
        """Where the supervisor publishes its reports (the gateway reads them)."""
        ...

    @property
    def fleet_secret(self) -> str:
        """The secret the fleet's worker tokens derive from (keys.derive_worker_token)."""
        ...


class Fleet:
    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self.supervisor: Supervisor | None = None
        self.backend: Backend | None = None
        self.snapshotter: Snapshotter | None = None  # the local fleet's, when it takes them
        self._board: FleetBoard | None = None

    # --- gateway.app.Service ------------------------------------------------------------

    async def start(self, host: FleetHost) -> None:
        self._board = host.board
        if not self.settings.enabled:
            return
        view = LocalFleetView(
            host.store,
            host.settings,
            host.fleet_secret,
            host.board,
            host.clock,
            remote_workers=self.settings.ray,
        )
        self.backend = self._backend(host)
        self.supervisor = Supervisor(view, self.settings, host.clock, self.backend)
        host.board.supervised = True
        self.supervisor.run_in_background()

    def _backend(self, host: FleetHost) -> Backend:
        data_dir = Path(host.settings.data_dir)
        containers = ContainerHost(
            engine_choice=self.settings.container_engine,
            owner=installation_id(host.fleet_secret),
            volume_root=str(host.settings.volume_root),
            credentials=RegistryPasswords(data_dir).get,
        )
        if self.settings.ray:
            from podium.fleet.raycluster import RayBackend  # imports ray

            return RayBackend(self.settings, containers)  # joins the cluster on its first pass
        self.snapshotter = self._snapshotter(data_dir)
        return LocalBackend(
            data_dir,
            self._discover,
            cpu_workers=self.settings.cpu_workers,
            containers=containers,
            snapshots=self.snapshotter,
        )

    def _snapshotter(self, data_dir: Path) -> Snapshotter | None:
        """Snapshot cold starts (docs/snapshots.md): on when CRIU >= 4 is found and this
        process is root, unless PODIUM_SNAPSHOTS=off."""
        found = Snapshotter.from_settings(self.settings, data_dir / "snapshots")
        if found is None:
            log.info("snapshots: off (turned off, no CRIU >= 4, or not root)")
        else:
            criu = found.criu
            log.info(
                "snapshots: CRIU %s at %s, images in %s", criu.version, criu.path, found.store.root
            )
        return found

    def begin_stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.begin_stop()

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()

    # --- status.FleetAccess -------------------------------------------------------------

    async def inventory(self) -> Inventory:
        if self.backend is not None and (found := self.backend.inventory()) is not None:
            return found
        return await asyncio.to_thread(self._discover)

    async def snapshots(self) -> list[dict[str, Any]] | None:
        if self.snapshotter is None:
            return None
        found = await asyncio.to_thread(self.snapshotter.store.list)
        return [s.public() for s in found]

    async def delete_snapshot(self, key: str) -> bool:
        if self.snapshotter is None:
            return False
        return await asyncio.to_thread(self.snapshotter.store.delete, key)

    def _discover(self) -> Inventory:
        """This machine's GPUs, discovered once (blocking: call it in a thread)."""
        board = self._board
        if board is not None and board.inventory is not None:
            return board.inventory
        found = discover(self.settings.gpus)
        host = socket.gethostname()
        inventory = dataclasses.replace(
            found, gpus=tuple(dataclasses.replace(g, node=host) for g in found.gpus)
        )
        if board is not None:
            board.inventory = inventory
        return inventory
