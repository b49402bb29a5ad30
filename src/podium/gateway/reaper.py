"""The reaper: ttl, executionTimeout, lost leases, retention, and the webhooks they cause.

One pass is `store.expire(now)`. Every gateway runs a Reaper, but it acts only while it
holds the store's `reaper` lock, a lease it renews on each pass: with many gateways on
one Redis exactly one reaps, and when it dies another takes over once the lease lapses.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from podium.errors import PodiumError
from podium.gateway.state import GatewayState

__all__ = ["REAPER_LOCK", "Reaper", "reap_once"]

log = logging.getLogger("podium.reaper")


async def reap_once(state: GatewayState) -> None:
    report = await state.store.expire(state.clock.now())
    for job in report.finished:
        await state.announce_final(job)
    if report.requeued:
        log.info("requeued %d job(s) whose worker was lost", len(report.requeued))


REAPER_LOCK = "reaper"


class Reaper:
    def __init__(self, state: GatewayState, interval: float, lease_s: float = 5.0) -> None:
        self.state = state
        self.interval = interval
        self.lease_s = max(lease_s, 3 * interval)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.active = False

    async def run(self) -> None:
        while True:
            try:
                held = await self.state.store.hold_lock(REAPER_LOCK, self.owner, self.lease_s)
                if held != self.active:
                    log.info("reaper %s: %s", self.owner, "active" if held else "standing by")
                self.active = held
                if held:
                    await reap_once(self.state)
            except PodiumError as exc:
                self.active = False
                log.warning("reaper pass failed: %s", exc.message)
            except Exception:
                log.exception("reaper pass failed")
            await asyncio.sleep(self.interval)

    def describe(self) -> dict[str, object]:
        return {"owner": self.owner, "active": self.active}
