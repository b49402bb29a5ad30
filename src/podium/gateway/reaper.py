"""The reaper: ttl, executionTimeout, lost leases, retention, and the webhooks they cause;
also the worker logs' and the metrics buckets' expiry.

One pass is `store.expire(now)`. Every gateway runs a Reaper, but it acts only while it
holds the store's `reaper` lock, a lease it renews on each pass: with many gateways on
one Redis exactly one reaps, and when it dies another takes over once the lease lapses.

A record the store cannot process is failed inside the pass (the store isolates it), so
no single job stops expiry; a pass that fails as a whole is counted, and `/healthz`
reports the reaper as failing (with the error) until a pass succeeds again.
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
    now = state.clock.now()
    report = await state.lifecycle.expire(now, state.settings.history_ms)
    await state.store.logs.expire(now - state.settings.log_retention_ms / 1000)
    await state.store.metrics.expire(now)
    if report.requeued:
        log.info("requeued %d job(s) whose worker was lost", len(report.requeued))
    if report.quarantined:
        log.error(
            "failed %d job(s) whose records could not be processed: %s",
            len(report.quarantined),
            ", ".join(report.quarantined[:20]),
        )


REAPER_LOCK = "reaper"


class Reaper:
    def __init__(self, state: GatewayState, interval: float, lease_s: float = 5.0) -> None:
        self.state = state
        self.interval = interval
        self.lease_s = max(lease_s, 3 * interval)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.active = False
        self.failures = 0  # passes in a row that failed
        self.last_error: str | None = None

    async def run(self) -> None:
        while True:
            await self.pass_once()
            await asyncio.sleep(self.interval)

    async def pass_once(self) -> None:
        try:
            await self.state.guard.check()
            if self.state.guard.lost:  # nothing to reap in a store that lost its data
                self.active = False
                return
            held = await self.state.store.hold_lock(REAPER_LOCK, self.owner, self.lease_s)
            if held != self.active:
                log.info("reaper %s: %s", self.owner, "active" if held else "standing by")
            self.active = held
            if held:
                await reap_once(self.state)
        except PodiumError as exc:
            self._failed(exc.message)
            log.warning("reaper pass failed: %s", exc.message)
        except Exception as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
            log.exception("reaper pass failed")
        else:
            self.failures = 0
            self.last_error = None

    def _failed(self, error: str) -> None:
        self.active = False
        self.failures += 1
        self.last_error = error[:500]

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def describe(self) -> dict[str, object]:
        return {
            "owner": self.owner,
            "active": self.active,
            "failing": self.failing,
            "failedPasses": self.failures,
            "lastError": self.last_error,
        }
