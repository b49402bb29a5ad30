"""Job history, `GET /v2/{endpoint_id}/requests` (podium.history): a page of the
endpoint's jobs, newest first, without inputs or outputs.

Admin scope: the list shows job ids, and a job id is what lets a key read that job's
result; a key that may only run or read some jobs must not learn every other caller's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from podium.gateway.auth import authorize_client
from podium.gateway.http import JSON, CodecRoute
from podium.gateway.state import state_of
from podium.history import encode_cursor, history_entry, parse_history_query
from podium.keys import Scope

__all__ = ["router"]

router = APIRouter(prefix="/v2/{endpoint_id}", tags=["client"], route_class=CodecRoute)


@router.get("/requests", summary="The endpoint's jobs, newest first (job history)")
async def requests(request: Request, endpoint_id: str) -> JSON:
    """`?status=FAILED&since=&until=` (ISO 8601 or epoch ms; since inclusive, until
    exclusive, on createdAt), `limit` (1–100, default 20), `cursor` (the `nextCursor`
    of the page before)."""
    state = state_of(request)
    await authorize_client(request, Scope.ADMIN, endpoint_id)
    state.limiter.hit(endpoint_id, "requests")
    query = parse_history_query(request.query_params, state.limits)
    await state.endpoint(endpoint_id)
    page = await state.store.history(endpoint_id, query)
    now = state.clock.now()
    return JSON(
        {
            "requests": [history_entry(job, now) for job in page.jobs],
            "nextCursor": None if page.next is None else encode_cursor(page.next),
        }
    )
