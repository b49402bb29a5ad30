"""The client API, `/v2/{endpoint_id}/...` (PROTOCOL.md §1)."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request

from podium import codec
from podium.board import health_counts
from podium.errors import BadRequest, NotFound
from podium.gateway.auth import authorize_client
from podium.gateway.http import JSON, CodecRoute, json_body, read_body
from podium.gateway.input_schema import check_input, schema_for
from podium.gateway.state import GatewayState, state_of
from podium.jobs import Job, clamp_wait_ms, parse_query_ms, parse_submission, status_object
from podium.keys import Scope
from podium.net import resolve_public

__all__ = ["router"]

router = APIRouter(prefix="/v2/{endpoint_id}", tags=["client"], route_class=CodecRoute)

_SUBMISSION = json_body(
    {
        "type": "object",
        "required": ["input"],
        "properties": {
            "input": {"description": "Anything JSON; handed to the worker as is."},
            "webhook": {"type": "string", "format": "uri"},
            "policy": {
                "type": "object",
                "properties": {
                    "executionTimeout": {"type": "integer"},
                    "ttl": {"type": "integer"},
                    "lowPriority": {"type": "boolean"},
                },
                "additionalProperties": False,
            },
            "s3Config": {"type": "object"},
        },
    },
    "Parsed as JSON whatever the Content-Type (RunPod clients mislabel it); see the limits "
    "in docs/api.md.",
)


async def _submit(request: Request, endpoint_id: str, sync: bool) -> tuple[GatewayState, Job]:
    state = state_of(request)
    await authorize_client(request, Scope.RUN, endpoint_id)
    endpoint = await state.endpoint(endpoint_id)
    if endpoint.spec.load_balancer:
        raise BadRequest(
            f"Endpoint {endpoint_id} is a LOAD_BALANCER endpoint: it has no queue. Send "
            f"requests to its workers' own paths, http://{endpoint_id}.<this host>/<path> "
            f"(or /lb/{endpoint_id}/<path>); see docs/api.md."
        )
    state.limiter.hit(endpoint_id, "runsync" if sync else "run")
    limit = state.limits.body_runsync_bytes if sync else state.limits.body_run_bytes
    raw = await read_body(request, limit)
    if not raw.strip():
        raise BadRequest('The request body is empty; send JSON like {"input": {...}}.')
    schema = schema_for(endpoint)
    check = None if schema is None else functools.partial(check_input, schema)
    body, input_json = await state.decoder.split(raw, "input", "The request body", check)
    sub = parse_submission(body, input_json, state.limits, endpoint.spec.execution_timeout_ms)
    if (
        sub.webhook
        and not state.settings.allow_private_webhooks
        and not await resolve_public(sub.webhook)
    ):
        raise BadRequest(
            f"`webhook` {sub.webhook[:200]} does not resolve to a public address, so it would "
            "never be called; use a public URL (or start the gateway with "
            "--allow-private-webhooks)."
        )
    if sync:
        retention = endpoint.spec.retention_sync_ms or state.settings.retention_sync_ms
    else:
        retention = endpoint.spec.retention_run_ms or state.settings.retention_run_ms
    job = Job.new(endpoint_id, sub, state.clock.now(), retention, sync=sync)
    await state.lifecycle.submit(job, endpoint.spec.retry_limit)
    return state, job


@router.post("/run", summary="Queue a job", response_class=JSON, openapi_extra=_SUBMISSION)
async def run(request: Request, endpoint_id: str) -> JSON:
    _, job = await _submit(request, endpoint_id, sync=False)
    return JSON({"id": job.id, "status": job.status.value})


@router.post(
    "/runsync",
    summary="Run a job and wait for its result",
    response_class=JSON,
    openapi_extra=_SUBMISSION,
)
async def runsync(request: Request, endpoint_id: str, wait: str | None = None) -> JSON:
    lim = state_of(request).limits
    wait_ms = clamp_wait_ms(
        wait, lim.runsync_wait_default_ms, lim.runsync_wait_min_ms, lim.runsync_wait_max_ms
    )
    state, job = await _submit(request, endpoint_id, sync=True)
    current = await state.store.wait_for_change(job.id, job, wait_ms / 1000, final_only=True)
    return JSON(status_object(current or job, state.clock.now()))


_STATUS_QUERY = {
    "parameters": [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": text,
            "schema": {"type": "string"},
        }
        for name, text in (
            ("ttl", "Set the job's retention to this many ms, 0 … 7 days (run scope)."),
            ("wait", "Long-poll up to this many ms until the status changes (extension)."),
        )
    ]
}


@router.get(
    "/status/{job_id}",
    summary="A job's status",
    response_class=JSON,
    openapi_extra=_STATUS_QUERY,
)
async def status(request: Request, endpoint_id: str, job_id: str) -> JSON:
    """`?ttl=ms` sets the job's retention, shorter or longer, up to 7 days (run scope: it
    changes the job); `?wait=ms` long-polls until it changes. (Query values are read
    directly: this is the hottest read route.)"""
    state = state_of(request)
    query = request.query_params
    ttl = query.get("ttl")
    await authorize_client(request, Scope.READ if ttl is None else Scope.RUN, endpoint_id)
    state.limiter.hit(endpoint_id, "status")
    if ttl is not None:
        retention_ms = parse_query_ms(ttl, "ttl", 0, state.limits.retention_max_ms)
    wait = query.get("wait")
    if wait is not None:
        wait_ms = clamp_wait_ms(wait, 0, 0, state.limits.status_wait_max_ms)
    job = await state.job(endpoint_id, job_id)
    if ttl is not None:
        await state.store.set_retention(job_id, retention_ms)
    if wait is not None and not job.final:
        job = await state.store.wait_for_change(job_id, job, wait_ms / 1000) or job
    return JSON(status_object(job, state.clock.now()))


@router.get("/status-sync/{job_id}", summary="Wait for a job to finish", response_class=JSON)
async def status_sync(
    request: Request, endpoint_id: str, job_id: str, wait: str | None = None
) -> JSON:
    state = state_of(request)
    await authorize_client(request, Scope.READ, endpoint_id)
    state.limiter.hit(endpoint_id, "status")
    lim = state.limits
    wait_ms = clamp_wait_ms(
        wait, lim.status_sync_wait_max_ms, lim.status_sync_wait_min_ms, lim.status_sync_wait_max_ms
    )
    job = await state.job(endpoint_id, job_id)
    if not job.final:
        job = await state.store.wait_for_change(job_id, job, wait_ms / 1000, final_only=True) or job
    return JSON(status_object(job, state.clock.now()))


@router.get("/stream/{job_id}", summary="New stream chunks of a job", response_class=JSON)
async def stream(request: Request, endpoint_id: str, job_id: str) -> JSON:
    """Each chunk is delivered once, so reading consumes: run scope."""
    state = state_of(request)
    await authorize_client(request, Scope.RUN, endpoint_id)
    state.limiter.hit(endpoint_id, "stream")
    await state.job(endpoint_id, job_id)  # NotFound for another endpoint's job
    job, chunks = await state.store.read_stream(job_id)
    if job is None:  # purged between the two reads
        raise NotFound(f"Job {job_id} does not exist (or its retention ran out).")
    body = status_object(job, state.clock.now())
    body.pop("output", None)
    body["stream"] = [{"output": codec.fragment(c)} for c in chunks]
    return JSON(body)


@router.post("/cancel/{job_id}", summary="Cancel a job", response_class=JSON)
async def cancel(request: Request, endpoint_id: str, job_id: str) -> JSON:
    state = state_of(request)
    await authorize_client(request, Scope.RUN, endpoint_id)
    state.limiter.hit(endpoint_id, "cancel")
    job = await state.lifecycle.cancel(await state.job(endpoint_id, job_id))
    return JSON({"id": job.id, "status": job.status.value})


@router.post("/retry/{job_id}", summary="Retry a FAILED or TIMED_OUT job", response_class=JSON)
async def retry(request: Request, endpoint_id: str, job_id: str) -> JSON:
    state = state_of(request)
    await authorize_client(request, Scope.RUN, endpoint_id)
    state.limiter.hit(endpoint_id, "run")
    await state.job(endpoint_id, job_id)
    job = await state.lifecycle.retry(job_id)
    return JSON({"id": job.id, "status": job.status.value})


@router.post("/purge-queue", summary="Remove every queued job", response_class=JSON)
async def purge_queue(request: Request, endpoint_id: str) -> JSON:
    state = state_of(request)
    await authorize_client(request, Scope.RUN, endpoint_id)
    await state.endpoint(endpoint_id)
    state.limiter.hit(endpoint_id, "purge-queue")
    removed = await state.store.purge_queue(endpoint_id)
    return JSON({"removed": removed, "status": "completed"})


@router.get("/health", summary="Job counts and worker states", response_class=JSON)
async def health(request: Request, endpoint_id: str) -> JSON:
    state = state_of(request)
    await authorize_client(request, Scope.READ, endpoint_id)
    await state.endpoint(endpoint_id)
    c = await state.store.counts(endpoint_id)
    # The fleet's phases for the workers it runs, the store's records for the rest.
    workers = health_counts(await state.workers(endpoint_id))
    return JSON(
        {
            "jobs": {
                "completed": c.completed,
                "failed": c.failed,
                "inProgress": c.in_progress,
                "inQueue": c.in_queue,
                "retried": c.retried,
                "cancelled": c.cancelled,  # extension
                "timedOut": c.timed_out,  # extension
            },
            "workers": workers,
        }
    )
