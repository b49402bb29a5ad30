"""Worker logs over HTTP (podium.logs; docs/api.md, "Worker logs").

    POST /v2/{ep}/worker-logs/{worker}   a worker (its endpoint's worker token) ships a
                                         batch of lines (LogShipper / HttpLogSink)
    GET  /v1/endpoints/{ep}/logs         read them: `tail`, `worker`, `job`, `since`, and
                                         `follow` (NDJSON, one object per line, heartbeats)

Reading takes the admin scope on that endpoint (a key limited to other endpoints gets
403): logs show job ids and whatever handlers print.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from podium import codec
from podium.clock import iso_time
from podium.errors import PodiumError, RateLimited
from podium.gateway.auth import authorize_client, authorize_worker
from podium.gateway.http import JSON, CodecRoute, json_body, read_body
from podium.gateway.state import state_of
from podium.keys import Scope
from podium.logs.lines import (
    BATCH_MAX_BYTES,
    TAIL_MAX,
    LogLine,
    dropped_line,
    parse_batch,
    parse_log_query,
)

__all__ = ["FOLLOWERS_PER_ENDPOINT", "FOLLOW_HEARTBEAT_S", "FOLLOW_POLL_S", "router"]

FOLLOW_POLL_S = 0.5  # a follower reads the store this often
FOLLOW_HEARTBEAT_S = 15.0  # a follower that got no line for this long gets a heartbeat
FOLLOWERS_PER_ENDPOINT = 32  # followers of one endpoint on one gateway
NDJSON = "application/x-ndjson"

router = APIRouter(tags=["logs"], route_class=CodecRoute)

_BATCH = json_body(
    {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "time": {"type": "number"},
                        "text": {"type": "string"},
                        "jobs": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["text"],
                },
            },
            "dropped": {"type": "integer", "minimum": 0},
        },
    },
    "A batch of a worker's log lines (podium.logs.lines).",
)


@router.post(
    "/v2/{endpoint_id}/worker-logs/{worker_id}",
    summary="A worker ships log lines (worker token)",
    tags=["worker"],
    openapi_extra=_BATCH,
)
async def ship(request: Request, endpoint_id: str, worker_id: str) -> Response:
    state = state_of(request)
    await authorize_worker(request, endpoint_id)
    raw = await read_body(request, BATCH_MAX_BYTES)
    lines, dropped = parse_batch(codec.loads(raw, "The log batch"), state.clock.now())
    if dropped:
        at = lines[0].at if lines else state.clock.now()
        lines.insert(0, LogLine(at, dropped_line(dropped)))
    cursor = await state.store.logs.append(endpoint_id, worker_id, lines, state.settings.log_budget)
    return JSON({"stored": len(lines), "cursor": cursor})


@router.get(
    "/v1/endpoints/{endpoint_id}/logs",
    summary="Worker log lines: tail, filter by worker or job, follow",
)
async def read(request: Request, endpoint_id: str, follow: bool = False) -> Response:
    """`tail` (0–10000, default 100): the last lines that match, oldest first; `since`:
    the lines after that cursor instead; `worker`, `job`: only that worker's lines, or
    the lines written while that job ran. The answer's `cursor` reads on from there.
    `follow=true`: NDJSON, the same lines then every new one as it comes, and
    `{"heartbeat": time, "cursor": n}` every 15 s without one; it ends when the client
    goes away."""
    state = state_of(request)
    await authorize_client(request, Scope.ADMIN, endpoint_id)
    query = parse_log_query(request.query_params)
    await state.endpoint(endpoint_id, fresh=True)  # deleted through another gateway: 404
    page = await state.store.logs.read(endpoint_id, query)
    if not follow:
        return JSON(
            {
                "endpointId": endpoint_id,
                "lines": [ln.public() for ln in page.lines],
                "cursor": page.cursor,
            }
        )
    followers = state.log_followers
    if followers.get(endpoint_id, 0) >= FOLLOWERS_PER_ENDPOINT:
        raise RateLimited(
            f"Endpoint {endpoint_id} has {FOLLOWERS_PER_ENDPOINT} log followers on this "
            "gateway already; stop one, or read with `since` instead of following.",
            retry_after=int(FOLLOW_HEARTBEAT_S),
        )

    async def lines() -> AsyncIterator[bytes]:
        # Counted here, not before: a response whose body never starts (the client left
        # first) never runs this generator, so it must not have been counted.
        followers[endpoint_id] = followers.get(endpoint_id, 0) + 1
        try:
            for ln in page.lines:
                yield codec.dumps(ln.public()) + b"\n"
            cursor, beat = page.cursor, time.monotonic()
            while True:
                try:
                    more = dataclasses.replace(query, tail=TAIL_MAX, since=cursor)
                    found = await state.store.logs.read(endpoint_id, more)
                except PodiumError as exc:  # the store failed: say so, end the stream
                    yield codec.dumps({"error": exc.message, "cursor": cursor}) + b"\n"
                    return
                cursor = found.cursor
                for ln in found.lines:
                    yield codec.dumps(ln.public()) + b"\n"
                if found.lines:
                    beat = time.monotonic()
                    continue
                if time.monotonic() - beat >= FOLLOW_HEARTBEAT_S:
                    beat = time.monotonic()
                    heartbeat = {"heartbeat": iso_time(state.clock.now()), "cursor": cursor}
                    yield codec.dumps(heartbeat) + b"\n"
                await asyncio.sleep(FOLLOW_POLL_S)
        finally:
            followers[endpoint_id] -= 1
            if not followers[endpoint_id]:
                with contextlib.suppress(KeyError):
                    del followers[endpoint_id]

    return StreamingResponse(
        lines(), media_type=NDJSON, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
