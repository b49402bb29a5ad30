"""The reaper: ttl, executionTimeout, lost leases, retention, and the webhooks they cause.

One pass is `store.expire(now)`; the loop runs it every `interval` seconds. With a
shared store, backends that need one active reaper guard `expire` themselves.
"""

from __future__ import annotations

import asyncio
import logging

from podium.errors import PodiumError
from podium.gateway.state import GatewayState

__all__ = ["reap_once", "run_reaper"]

log = logging.getLogger("podium.reaper")


async def reap_once(state: GatewayState) -> None:
    report = await state.store.expire(state.clock.now())
    for job in report.finished:
        await state.announce_final(job)
    if report.requeued:
        log.info("requeued %d job(s) whose worker was lost", len(report.requeued))


async def run_reaper(state: GatewayState, interval: float) -> None:
    while True:
        try:
            await reap_once(state)
        except PodiumError as exc:
            log.warning("reaper pass failed: %s", exc.message)
        except Exception:
            log.exception("reaper pass failed")
        await asyncio.sleep(interval)
