"""OpenAI-compatible routes, `/v2/{endpoint_id}/openai/v1/...` (podium.openai_compat).

Each request becomes one job (run scope, the endpoint's keys; rate limit as RunPod's
`/openai/*`: 2000 per 10 s). A non-streaming request waits for the job's answer; a
streaming one (`"stream": true`) answers server-sent events built from the job's stream
chunks, ending with `data: [DONE]`. The response starts once the first chunk (or the
end) is there, so a job that fails before streaming anything answers an HTTP error. A
client that goes away, or a job that has not answered within `openai_wait_ms`, cancels
the job: nobody would read its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import anyio
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from podium import codec
from podium.errors import BadRequest, JobFailed
from podium.gateway.auth import authorize_client
from podium.gateway.http import JSON, CodecRoute, json_body, read_body
from podium.gateway.input_schema import check_input, schema_for
from podium.gateway.state import GatewayState, state_of
from podium.jobs import Job, JobStatus, Submission, parse_policy
from podium.keys import Scope
from podium.openai_compat import (
    BULKY_FIELD,
    OpenAIRequest,
    SseWriter,
    answer,
    check_nesting,
    job_error,
    job_input_json,
    parse_body,
    route_of,
)

__all__ = ["router"]

router = APIRouter(prefix="/v2/{endpoint_id}/openai/v1", tags=["openai"], route_class=CodecRoute)

KEEPALIVE_S = 15.0  # an SSE comment this often while a stream waits for its next chunk
_BODY = json_body(
    {
        "type": "object",
        "properties": {"model": {"type": "string"}, "stream": {"type": "boolean"}},
        "description": "OpenAI's request, handed to the worker as `openai_input`.",
    },
    "OpenAI's request body (e.g. model, messages, max_tokens, stream); the worker reads it.",
)
_T = TypeVar("_T")


async def _submit(request: Request, endpoint_id: str, call: OpenAIRequest) -> Job:
    state = state_of(request)
    endpoint = await state.endpoint(endpoint_id)
    if endpoint.spec.load_balancer:  # its workers' own server answers /v1/... itself
        raise BadRequest(
            f"Endpoint {endpoint_id} is a LOAD_BALANCER endpoint: call its workers' OpenAI "
            f"routes at http://{endpoint_id}.<this host>/v1/... (or /lb/{endpoint_id}/v1/...)."
        )
    schema = schema_for(endpoint)
    if schema is not None:
        check_input(schema, codec.loads_trusted(call.input_json))
    sub = Submission(
        input_json=call.input_json,
        policy=parse_policy(None, state.limits, endpoint.spec.execution_timeout_ms),
    )
    retention = endpoint.spec.retention_sync_ms or state.settings.retention_sync_ms
    job = Job.new(endpoint_id, sub, state.clock.now(), retention, sync=True)
    await state.lifecycle.submit(job, endpoint.spec.retry_limit)
    return job


async def _abandon(state: GatewayState, job: Job) -> None:
    """Cancel a job whose answer nobody will read (the client left, the wait ran out)."""
    with contextlib.suppress(Exception):
        before = await state.store.get(job.id)
        if before is not None and not before.final:
            await state.lifecycle.cancel(before)


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


class _Gone(Exception):
    """The client disconnected while its request waited."""


async def _unless_gone(request: Request, work: Awaitable[_T]) -> _T:
    """`work`'s result; _Gone once the client disconnected (work is then cancelled)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, gone, return_exceptions=True)
    if task.cancelled():
        raise _Gone
    return task.result()


def _wait_s(state: GatewayState) -> float:
    return state.settings.openai_wait_ms / 1000


async def _run(request: Request, endpoint_id: str, call: OpenAIRequest) -> Response:
    state = state_of(request)
    job = await _submit(request, endpoint_id, call)
    try:
        if call.stream:
            return await _stream(request, state, job)
        waited = state.store.wait_for_change(job.id, job, _wait_s(state), final_only=True)
        current = await _unless_gone(request, waited)
    except _Gone:
        await _abandon(state, job)
        return Response(status_code=499)  # nobody reads it: the client left
    if current is None:
        raise JobFailed(f"Job {job.id} vanished before it answered.", status=500)
    if not current.final:
        await _abandon(state, job)
        raise JobFailed(
            f"The job did not finish within {_wait_s(state):g} s; it was cancelled.",
            status=504,
            kind="timeout",
        )
    return JSON(answer(current))


async def _stream(request: Request, state: GatewayState, job: Job) -> Response:
    """Wait for the first chunk (or the end) before answering, then stream the rest."""
    writer = SseWriter()
    first: list[str] = []
    deadline = time.monotonic() + _wait_s(state)  # a wait in real time, like the stores'
    current: Job | None = job
    while current is not None and not current.final and not first:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        read = state.store.read_stream(job.id, min(left, KEEPALIVE_S), current.status)
        current, chunks = await _unless_gone(request, read)
        first = [writer.feed(codec.loads_trusted(c)) for c in chunks]
    if current is None:
        raise JobFailed(f"Job {job.id} vanished before it answered.", status=500)
    if not first and not current.final:
        await _abandon(state, job)
        raise JobFailed(
            f"The job sent nothing within {_wait_s(state):g} s; it was cancelled.",
            status=504,
            kind="timeout",
        )
    if not first and current.status is not JobStatus.COMPLETED:
        raise job_error(current)  # failed before streaming anything: a plain HTTP error
    return StreamingResponse(
        _events(state, job, current, writer, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    state: GatewayState, job: Job, current: Job, writer: SseWriter, first: list[str]
) -> AsyncIterator[str]:
    finished = False
    try:
        for text in first:
            yield text
        while not current.final:
            latest, chunks = await state.store.read_stream(job.id, KEEPALIVE_S, current.status)
            if latest is None:
                yield writer.finish(job)  # gone (purged): end the stream as failed
                finished = True
                return
            current = latest
            if current.status is JobStatus.IN_QUEUE:
                # Its worker was lost and the job went back to the queue: a new run would
                # stream from the start again, after what this client already has.
                yield writer.fail("The worker was lost mid-stream; the job was cancelled.")
                return  # not finished: the finally cancels the job
            if not chunks and not current.final:
                yield ": keep-alive\n\n"
            for chunk in chunks:
                yield writer.feed(codec.loads_trusted(chunk))
        yield writer.finish(current)
        finished = True
    finally:
        if not finished:  # the client went away mid-stream
            # The server cancels this generator's scope: shield the cancel from it.
            with anyio.CancelScope(shield=True):
                await _abandon(state, job)


async def _post(request: Request, endpoint_id: str, route: str) -> Response:
    state = state_of(request)
    await authorize_client(request, Scope.RUN, endpoint_id)
    await state.endpoint(endpoint_id)
    state.limiter.hit(endpoint_id, "openai")
    raw = await read_body(request, state.limits.body_runsync_bytes)
    if not raw.strip():
        raise BadRequest("The request body is empty; send OpenAI's request as JSON.")
    bulky = BULKY_FIELD.get(route, "input")
    rest, bulky_json = await state.decoder.split(raw, bulky, "The request body", check_nesting)
    return await _run(request, endpoint_id, parse_body(route, rest, bulky_json))


@router.post(
    "/chat/completions",
    summary="OpenAI chat completions, as a job (worker-vllm)",
    openapi_extra=_BODY,
)
async def chat_completions(request: Request, endpoint_id: str) -> Response:
    return await _post(request, endpoint_id, "/v1/chat/completions")


@router.post(
    "/completions", summary="OpenAI completions, as a job (worker-vllm)", openapi_extra=_BODY
)
async def completions(request: Request, endpoint_id: str) -> Response:
    return await _post(request, endpoint_id, "/v1/completions")


@router.get("/models", summary="The models the endpoint's workers serve (worker-vllm)")
async def models(request: Request, endpoint_id: str) -> Response:
    state = state_of(request)
    await authorize_client(request, Scope.RUN, endpoint_id)
    await state.endpoint(endpoint_id)
    state.limiter.hit(endpoint_id, "openai")
    return await _run(
        request, endpoint_id, OpenAIRequest(job_input_json("/v1/models", None), stream=False)
    )


@router.post(
    "/{path:path}",
    summary="Any other OpenAI POST route, passed to the worker",
    openapi_extra=_BODY,
)
async def other(request: Request, endpoint_id: str, path: str) -> Response:
    """e.g. /v1/responses or /v1/embeddings: worker-vllm proxies any route to vLLM."""
    return await _post(request, endpoint_id, route_of(path))
