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
import socket
from pathlib import Path
from typing import Protocol

from podium.board import FleetBoard, Inventory
from podium.clock import Clock
from podium.fleet.backend import Backend
from podium.fleet.containers import ContainerHost
from podium.fleet.gpus import discover
from podium.fleet.local import LocalBackend
from podium.fleet.settings import FleetSettings
from podium.fleet.supervisor import Supervisor
from podium.fleet.view import LocalFleetView
from podium.keys import installation_id
from podium.settings import Settings
from podium.store import JobStore
from podium.store.records import RegistryPasswords

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
        return LocalBackend(
            data_dir, self._discover, cpu_workers=self.settings.cpu_workers, containers=containers
        )

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
