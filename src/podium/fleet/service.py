"""The fleet beside a gateway: started and stopped with it (gateway.app.Service), and what
its routes may ask (status.FleetAccess).

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
from typing import TYPE_CHECKING

from podium.fleet.backend import Backend
from podium.fleet.gpus import Inventory, discover
from podium.fleet.local import LocalBackend
from podium.fleet.settings import FleetSettings
from podium.fleet.supervisor import Supervisor
from podium.fleet.view import LocalFleetView

if TYPE_CHECKING:
    from podium.gateway.state import GatewayState

__all__ = ["Fleet"]


class Fleet:
    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self.supervisor: Supervisor | None = None
        self.backend: Backend | None = None
        self._state: GatewayState | None = None

    # --- gateway.app.Service ------------------------------------------------------------

    async def start(self, state: GatewayState) -> None:
        self._state = state
        state.fleet_access = self
        if not self.settings.enabled:
            return
        assert state.fleet_secret is not None  # created before services start
        view = LocalFleetView(
            state.store,
            state.settings,
            state.fleet_secret,
            state.fleet,
            state.clock,
            remote_workers=self.settings.ray,
        )
        self.backend = self._backend(Path(state.settings.data_dir))
        self.supervisor = Supervisor(view, self.settings, state.clock, self.backend)
        state.fleet.supervised = True
        self.supervisor.start()

    def _backend(self, data_dir: Path) -> Backend:
        if self.settings.ray:
            from podium.fleet.raycluster import RayBackend  # imports ray

            return RayBackend(self.settings)  # joins the cluster on the first pass
        return LocalBackend(data_dir, self._discover, cpu_workers=self.settings.cpu_workers)

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
        board = self._state.fleet if self._state is not None else None
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
