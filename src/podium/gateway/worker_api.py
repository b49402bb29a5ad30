"""The worker protocol, `/v2/{endpoint_id}/job-*` and `/ping` (PROTOCOL.md §2).

Answers here never 5xx for a worker's bad input: the runpod SDK drops a result after
three 5xx answers, so a bad body gets 400 and its job ends FAILED with a clear error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams
from starlette.responses import Response

from podium.clock import SKEW_MAX_S, check_time
from podium.codec import ascii_digits
from podium.endpoints.worker_env import NEXT_JOB_PARAM, PING_INTERVAL_HEADER
from podium.errors import BadRequest, Conflict, PayloadTooLarge
from podium.gateway.auth import authorize_worker
from podium.gateway.http import JSON, CodecRoute, json_body, read_body
from podium.gateway.state import GatewayState, state_of
from podium.jobs import Job, JobStatus, WorkerReport, parse_worker_report

__all__ = ["router"]

log = logging.getLogger("podium.gateway")
router = APIRouter(prefix="/v2/{endpoint_id}", tags=["worker"], route_class=CodecRoute)
T = TypeVar("T")

_RESULT = json_body(
    {
        "type": "object",
        "properties": {
            "output": {},
            "error": {"type": "string"},
            "status": {"type": "string"},
            "stopPod": {"type": "boolean"},
        },
    },
    "The raw body is JSON whatever its Content-Type (the runpod SDK labels it form-urlencoded).",
)
_CHUNK = json_body({"type": "object", "properties": {"output": {}}}, "One stream chunk.")


def _hold(request: Request, state: GatewayState) -> float:
    """How long to hold a long-poll: the gateway's setting, or shorter if asked (?hold=s)."""
    raw = request.query_params.get("hold")
    if raw is None:
        return state.settings.take_hold_s
    try:
        return max(0.0, min(float(raw), state.settings.take_hold_s))
    except ValueError:
        raise BadRequest(f"`hold` must be a number of seconds, got {raw!r}.") from None


async def _disconnected(request: Request) -> None:
    """Return once the client has gone away (the body of a GET is empty)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _while_connected(request: Request, wait: Awaitable[list[T]]) -> list[T]:
    """A long-poll that stops holding as soon as the worker disconnects ([] then), so
    nothing is handed to a worker that is no longer listening."""
    held = asyncio.ensure_future(wait)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({held, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not held.done():
            held.cancel()
        await asyncio.gather(held, gone, return_exceptions=True)
    return [] if held.cancelled() else held.result()


async def _take(request: Request, endpoint_id: str, worker_id: str, n: int) -> list[Job]:
    state = state_of(request)
    await authorize_worker(request, endpoint_id)
    hold = _hold(request, state)
    return await _while_connected(
        request,
        state.lifecycle.take(endpoint_id, worker_id, n, hold=hold, lease_s=state.settings.lease_s),
    )


@router.get("/job-take/{worker_id}", summary="Long-poll for one job")
async def job_take(request: Request, endpoint_id: str, worker_id: str) -> Response:
    jobs = await _take(request, endpoint_id, worker_id, 1)
    if not jobs:
        return Response(status_code=204)
    return JSON(jobs[0].work_item())


@router.get("/job-take-batch/{worker_id}", summary="Long-poll for up to batch_size jobs")
async def job_take_batch(
    request: Request, endpoint_id: str, worker_id: str, batch_size: int = 1
) -> Response:
    limit = state_of(request).limits.take_batch_max
    if not 1 <= batch_size <= limit:
        raise BadRequest(f"`batch_size` must be between 1 and {limit}, got {batch_size}.")
    jobs = await _take(request, endpoint_id, worker_id, batch_size)
    if not jobs:
        return Response(status_code=204)
    return JSON([j.work_item() for j in jobs])


@router.get("/job-stop/{worker_id}", summary="Long-poll for jobs this worker must stop")
async def job_stop(request: Request, endpoint_id: str, worker_id: str) -> Response:
    state = state_of(request)
    await authorize_worker(request, endpoint_id)
    # Held on the store's wake-up (a stop posted on any gateway), not by polling.
    ids = await _while_connected(
        request, state.store.jobs_to_stop(endpoint_id, worker_id, hold=_hold(request, state))
    )
    return JSON({"jobsToStop": ids}) if ids else Response(status_code=204)


@router.post(
    "/job-done/{worker_id}/{job_id}",
    summary="Post a job's result or progress",
    openapi_extra=_RESULT,
)
async def job_done(
    request: Request, endpoint_id: str, worker_id: str, job_id: str, isStream: str = "false"
) -> Response:
    state = state_of(request)
    await authorize_worker(request, endpoint_id)
    take_next = _take_next(request, state)
    job = await state.job(endpoint_id, job_id)
    if job.worker_id != worker_id:
        raise Conflict(f"Worker {worker_id} does not hold job {job_id}.")
    try:
        raw = await read_body(request, state.limits.result_bytes)
        body, output_json = (
            await state.decoder.split(raw, "output", "The job-done body")
            if raw.strip()
            else ({}, None)
        )
        report = parse_worker_report(body, output_json, isStream.lower() == "true")
    except (BadRequest, PayloadTooLarge) as exc:
        # Never COMPLETED without output: the job fails with the reason.
        failed = WorkerReport(
            kind="final",
            status=JobStatus.FAILED,
            error=f"The worker posted an unusable result: {exc.message}",
        )
        await state.lifecycle.finish(job_id, worker_id, failed)
        raise
    if report.kind == "progress":
        job = await state.store.progress(job_id, worker_id, report.output_json)
        return JSON({"id": job_id, "status": job.status.value})
    result = await state.lifecycle.finish(job_id, worker_id, report)
    answer: dict[str, Any] = {
        "id": job_id,
        "status": result.job.status.value,
        "applied": result.applied,
    }
    if take_next:
        # A duplicate post (applied: false; a retry of one that got through) takes nothing:
        # the worker that sent it may not be waiting for jobs, which would then sit orphaned
        # until their lease ends.
        jobs = []
        if result.applied:
            jobs = await state.lifecycle.take(
                endpoint_id, worker_id, take_next, hold=0.0, lease_s=state.settings.lease_s
            )
        answer["next"] = [j.work_item() for j in jobs]
    return JSON(answer)


def _take_next(request: Request, state: GatewayState) -> int:
    """`?podium_next=N` (Podium's runtime only): answer with up to N queued jobs for this
    worker, taken without waiting, so that a busy worker makes one request per job."""
    raw = request.query_params.get(NEXT_JOB_PARAM)
    if raw is None:
        return 0
    limit = state.limits.take_batch_max
    try:
        n = int(raw)
    except ValueError:
        n = -1
    if not 0 <= n <= limit:
        raise BadRequest(f"`{NEXT_JOB_PARAM}` must be between 0 and {limit}, got {raw!r}.")
    return n


@router.post(
    "/job-stream/{worker_id}/{job_id}",
    summary="Append stream chunks to a job",
    openapi_extra=_CHUNK,
)
async def job_stream(request: Request, endpoint_id: str, worker_id: str, job_id: str) -> Response:
    state = state_of(request)
    await authorize_worker(request, endpoint_id)
    await state.job(endpoint_id, job_id)  # NotFound for another endpoint's job
    raw = await read_body(request, state.limits.stream_chunk_bytes)
    body, chunk = await state.decoder.split(raw, "output", "The job-stream body")
    if not isinstance(body, dict):
        raise BadRequest(f"The job-stream body must be a JSON object, got {type(body).__name__}.")
    appended = await state.lifecycle.append_stream(
        job_id, worker_id, [chunk or "null"], state.limits.result_bytes
    )
    if appended.over_limit:
        raise PayloadTooLarge(
            f"The job's stream chunks passed the limit of {state.limits.result_bytes} bytes in "
            "all; the job ended FAILED."
        )
    return JSON({"id": job_id, "status": appended.job.status.value})


# Podium's runtime says when its process came up (worker/startup.py), epoch ms.
_STARTUP = {"exec_ms": "execAt", "boot_ms": "bootedAt", "load_ms": "loadedAt"}


def _startup(q: QueryParams, now: float) -> dict[str, float] | None:
    """The startup times a ping carries (None: it carries none, as a runpod SDK worker's),
    each at most a day past this gateway's clock (a read must be able to show it)."""
    out: dict[str, float] = {}
    for param, name in _STARTUP.items():
        raw = q.get(param)
        if raw is None:
            continue
        if not ascii_digits(raw) or len(raw) > 15:
            raise BadRequest(
                f"`{param}` must be a time in epoch milliseconds (digits), got {raw[:40]!r}."
            )
        out[name] = check_time(int(raw) / 1000.0, param, 0.0, now + SKEW_MAX_S)
    return out or None


@router.get("/ping/{worker_id}", summary="Worker heartbeat; renews the listed jobs' leases")
async def ping(request: Request, endpoint_id: str, worker_id: str) -> Response:
    state = state_of(request)
    await authorize_worker(request, endpoint_id)
    q = request.query_params
    job_ids = [j for j in q.get("job_id", "").split(",") if j]
    worker_state = "unhealthy" if q.get("status") == "unhealthy" else None
    info: dict[str, Any] | None = _startup(q, state.clock.now())
    if worker_state:
        info = {**(info or {}), "check": q.get("check"), "reason": q.get("reason")}
        log.warning("worker %s reports unhealthy: %s", worker_id, info)
    elif q.get("state") in ("initializing", "idle", "running"):
        worker_state = q.get("state")
    await state.store.heartbeat(
        endpoint_id, worker_id, job_ids, state.settings.lease_s, worker_state, info
    )
    return JSON({}, headers={PING_INTERVAL_HEADER: str(state.settings.ping_interval_ms)})
