"""The endpoints' metrics over time (podium.series): what this gateway counted, written to
the store, and the worker-state samples.

Routes and the fleet's board count events into `Metrics.series` (a Recorder in memory)
as they happen; every `PODIUM_METRICS_FLUSH_S` (5 s) the writer writes everything drained
to `store.metrics` in one call, and at most every SAMPLE_S it first samples each
endpoint's workers (what /health shows: the fleet's phases merged with the store's
records). A write that fails is merged
back for the next one (the recorder holds a bounded number of minutes). A read of the
series (`GET /v2/{id}/metrics`) flushes first, so this gateway's own events are in it;
another gateway's lag by at most its flush period. Stopping the gateway flushes once
more; a gateway killed with -9 loses at most the last period's counts.
"""

from __future__ import annotations

import asyncio
import logging

from podium.board import health_counts
from podium.errors import PodiumError
from podium.gateway.state import GatewayState

__all__ = ["SeriesWriter"]

log = logging.getLogger("podium.series")
SAMPLE_S = 15.0  # worker-state samples: four a minute (a minute's bucket keeps the peak)


class SeriesWriter:
    def __init__(self, state: GatewayState, interval_s: float) -> None:
        self.state = state
        self.interval_s = interval_s
        self._lock = asyncio.Lock()
        self._sampled_at: float | None = None
        self.failures = 0  # writes in a row that failed

    async def run(self) -> None:
        try:
            while True:
                await self.pass_once()
                await asyncio.sleep(self.interval_s)
        finally:  # the gateway stops: what was counted since the last pass is written
            try:
                await self.flush()
            except Exception as exc:
                log.warning("metrics not written at stop: %s", exc)

    async def pass_once(self) -> None:
        try:
            now = self.state.clock.now()
            if self._sampled_at is None or now - self._sampled_at >= SAMPLE_S:
                self._sampled_at = now
                await self.sample()
            await self.flush()
        except PodiumError as exc:
            log.warning("metrics pass failed: %s", exc.message)
        except Exception:
            log.exception("metrics pass failed")

    async def sample(self) -> None:
        """Each endpoint's workers by RunPod state, now."""
        now = self.state.clock.now()
        for endpoint in await self.state.store.list_endpoints():
            try:
                await self._sample(endpoint.id, now)
            except Exception:  # one endpoint's records never stop the others' samples
                log.exception("metrics: could not sample the workers of %s", endpoint.id)

    async def refresh(self, endpoint_id: str) -> None:
        """Before a read of the endpoint's series: its workers sampled now (the current
        step shows what /health shows) and what this gateway counted, written."""
        await self._sample(endpoint_id, self.state.clock.now())
        await self.flush()

    async def _sample(self, endpoint_id: str, now: float) -> None:
        counts = health_counts(await self.state.workers(endpoint_id))
        self.state.metrics.series.workers(endpoint_id, now, counts)

    async def flush(self) -> None:
        """Write what was counted to the store (merged back when the store fails)."""
        recorder = self.state.metrics.series
        async with self._lock:
            deltas = recorder.drain()
            if not deltas:
                return
            try:
                await self.state.store.metrics.record(deltas)
            except BaseException:
                recorder.put_back(deltas)
                self.failures += 1
                raise
            self.failures = 0
