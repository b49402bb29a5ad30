"""An endpoint's metrics over time, `GET /v2/{endpoint_id}/metrics?interval=1h|6h|1d|1w`
(podium.series): RunPod's seven charts as series, for the console's Metrics tab.

Read scope on the endpoint (a key limited to some endpoints reads only theirs): the
series are counts and times, no job ids or data. A read samples the endpoint's workers
(so the current step shows what /health shows) and flushes what this gateway has
counted, then reads at most a few hundred buckets of one tier, whatever the number of
jobs (bench/metrics_series.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from podium import series
from podium.errors import BadRequest
from podium.gateway.auth import authorize_client
from podium.gateway.http import JSON, CodecRoute
from podium.gateway.state import state_of
from podium.keys import Scope

__all__ = ["router"]

router = APIRouter(prefix="/v2/{endpoint_id}", tags=["client"], route_class=CodecRoute)


@router.get("/metrics", summary="The endpoint's metrics over time (the Metrics tab)")
async def metrics(request: Request, endpoint_id: str, interval: str = "1h") -> JSON:
    """Requests (total, completed, failed, cancelled, timedOut, retried), execution,
    delay and cold-start times (P70/P90/P98, ms), cold starts, webhook deliveries and
    worker states, one point per step of the interval (`time`: each step's start, unix
    seconds), and the interval's `totals`."""
    state = state_of(request)
    await authorize_client(request, Scope.READ, endpoint_id)
    state.limiter.hit(endpoint_id, "metrics")
    try:
        iv = series.interval(interval)
    except ValueError as exc:
        raise BadRequest(f"{exc}.") from None
    await state.endpoint(endpoint_id)
    if state.series is not None:
        await state.series.refresh(endpoint_id)
    now = state.clock.now()
    start, end = iv.window(now)
    buckets = await state.store.metrics.read(endpoint_id, iv.width_s, start, end)
    return JSON(series.series(endpoint_id, iv, now, buckets))
