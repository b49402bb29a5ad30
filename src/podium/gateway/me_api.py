"""`GET /v1/me`: who the presented API key is — its scopes and the endpoints it reaches.

The console signs in with it (a wrong key gets 401 here, like everywhere else), hides the
admin-only parts from `read` and `run` keys, and lists the endpoints a non-admin key may
use (the admin-only `GET /v1/endpoints` is not open to them). Any valid key may call it.

    scopes          what the key may do on the endpoints it reaches (`endpoints`)
    gatewayScopes   what it may do gateway-wide (create endpoints, manage keys): the same,
                    but an admin key limited to some endpoints administers only those, so
                    `admin` is missing here for it
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from podium.gateway.auth import authorize_client
from podium.gateway.http import JSON, CodecRoute
from podium.gateway.state import state_of
from podium.keys import Scope

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["session"], route_class=CodecRoute)


@router.get("/me", summary="The calling API key: its scopes and the endpoints it reaches")
async def me(request: Request) -> JSON:
    state = state_of(request)
    key = await authorize_client(request, Scope.READ)  # None: --insecure-no-auth
    scopes = [s for s in Scope if key is None or key.allows(s, *key.endpoints[:1])]
    wide = [s for s in Scope if key is None or key.allows(s)]
    endpoints = [
        {"id": e.id, "name": e.spec.name, "templateId": e.spec.template_id, "type": e.spec.type}
        for e in await state.store.list_endpoints()
        if key is None or key.allows(Scope.READ, e.id)
    ]
    return JSON(
        {
            "key": key.public() if key is not None else None,
            "scopes": [str(s) for s in scopes],
            "gatewayScopes": [str(s) for s in wide],
            "endpoints": endpoints,
            "publicUrl": state.settings.public_url,
        }
    )
