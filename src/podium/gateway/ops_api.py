"""Operations: `/healthz` (liveness, details for the admin key) and `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from podium import __version__
from podium.clock import iso_time
from podium.errors import PodiumError
from podium.gateway.auth import authorize_client
from podium.gateway.errors import error_response
from podium.gateway.http import JSON, CodecRoute
from podium.gateway.state import state_of
from podium.keys import Scope as KeyScope

__all__ = ["RefuseWhileStoreLost", "router"]

router = APIRouter(tags=["ops"], route_class=CodecRoute)


@router.get("/healthz", summary="Liveness; details with the admin key")
async def healthz(request: Request) -> JSON:
    """200 `{"ok": true}` while the gateway can serve; 503 `{"ok": false, "error"}` when
    the store cannot be reached or lost its data, or the reaper's passes fail. Details
    (version, reaper, store) only for the admin key: they name hosts and processes."""
    state = state_of(request)
    problems = []
    try:
        await state.store.ping()
        await state.guard.check()
    except PodiumError as exc:
        problems.append(exc.message)
    if state.guard.lost:
        problems.append(state.guard.lost)
    if state.reaper is not None and state.reaper.failing:
        problems.append(f"The reaper's passes fail: {state.reaper.last_error}")
    body: dict[str, object] = {"ok": not problems}
    if problems:
        body["error"] = " ".join(problems)
    if request.headers.get("authorization"):
        await authorize_client(request, KeyScope.ADMIN)
        body["version"] = __version__
        body["reaper"] = state.reaper.describe() if state.reaper else None
        body["store"] = state.store.where
        body["instance"] = state.guard.mark
        if state.fleet.supervised:
            # when the fleet controller beside this gateway last looked at every endpoint
            # (tests wait on it instead of sleeping: "a pass made after the idle timeout")
            last = state.fleet.updated_at
            body["fleet"] = {"lastPassAt": iso_time(last) if last is not None else None}
    return JSON(body, status_code=503 if problems else 200)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    """What the calling key may see: a key limited to some endpoints sees only theirs."""
    state = state_of(request)
    key = await authorize_client(request, KeyScope.READ)
    visible = set(key.endpoints) if key is not None and key.endpoints else None
    alive_since = state.clock.now() - state.settings.lease_s
    body = await state.metrics.render(state.store, alive_since, visible)
    return Response(body, media_type="text/plain; version=0.0.4")


class RefuseWhileStoreLost:
    """While the store has lost its data (gateway/instance.py), every route answers 503
    naming that, instead of misleading 401s and 404s; /healthz reports it itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            state = getattr(scope["app"].state, "podium", None)
            if state is not None and state.guard.lost:
                await error_response(503, state.guard.lost)(scope, receive, send)
                return
        await self.app(scope, receive, send)
