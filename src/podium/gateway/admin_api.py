"""The admin API, `/v1/...`: endpoints and API keys (admin scope)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from podium.endpoints import Endpoint, EndpointSpec, new_endpoint_id
from podium.errors import NotFound
from podium.gateway.auth import authorize_client
from podium.gateway.http import JSON
from podium.gateway.state import GatewayState
from podium.jobs import DEFAULT_LIMITS
from podium.keys import ApiKey, Scope, hash_secret, new_key, new_worker_token

__all__ = ["router"]



async def _admin(request: Request) -> None:
    await authorize_client(request, Scope.ADMIN)


router = APIRouter(prefix="/v1", tags=["admin"], dependencies=[Depends(_admin)])


def _state(request: Request) -> GatewayState:
    return request.app.state.podium


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=191)
    executionTimeoutMs: int = DEFAULT_LIMITS.execution_timeout_default_ms
    retryLimit: int = DEFAULT_LIMITS.retry_limit_default
    retentionRunMs: int | None = None
    retentionSyncMs: int | None = None
    inputSchema: dict[str, Any] | None = None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="key", min_length=1, max_length=191)
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.RUN], min_length=1)
    endpoints: list[str] = Field(default_factory=list)


@router.post("/endpoints", summary="Create an endpoint; returns its worker token once")
async def create_endpoint(request: Request, body: EndpointCreate) -> JSON:
    state = _state(request)
    spec = EndpointSpec(
        name=body.name,
        execution_timeout_ms=body.executionTimeoutMs,
        retry_limit=body.retryLimit,
        retention_run_ms=body.retentionRunMs,
        retention_sync_ms=body.retentionSyncMs,
        input_schema=body.inputSchema,
    )
    spec.validate()
    token = new_worker_token()
    endpoint = Endpoint(
        id=new_endpoint_id(),
        spec=spec,
        worker_token_hash=hash_secret(token),
        webhook_secret=secrets.token_hex(32),
        created_at=state.clock.now(),
    )
    await state.store.put_endpoint(endpoint)
    return JSON(
        {
            **endpoint.public(),
            "workerToken": token,
            "webhookSecret": endpoint.webhook_secret,
            "url": f"{state.settings.base_url}/v2/{endpoint.id}",
        }
    )


@router.get("/endpoints", summary="List endpoints")
async def list_endpoints(request: Request) -> JSON:
    state = _state(request)
    return JSON([e.public() for e in await state.store.list_endpoints()])


@router.get("/endpoints/{endpoint_id}", summary="One endpoint")
async def get_endpoint(request: Request, endpoint_id: str) -> JSON:
    state = _state(request)
    return JSON((await state.endpoint(endpoint_id)).public())


@router.delete("/endpoints/{endpoint_id}", summary="Delete an endpoint and its queued jobs")
async def delete_endpoint(request: Request, endpoint_id: str) -> JSON:
    state = _state(request)
    if not await state.store.delete_endpoint(endpoint_id):
        raise NotFound(f"Endpoint {endpoint_id} does not exist.")
    return JSON({"id": endpoint_id, "deleted": True})


@router.post("/keys", summary="Create an API key; the key is shown once")
async def create_key(request: Request, body: KeyCreate) -> JSON:
    state = _state(request)
    plain = new_key()
    key = ApiKey(
        id="key_" + secrets.token_hex(6),
        name=body.name,
        hash=hash_secret(plain),
        scopes=list(body.scopes),
        endpoints=body.endpoints,
        created_at=state.clock.now(),
        prefix=plain[:7],
    )
    await state.store.put_key(key)
    return JSON({**key.public(), "key": plain})


@router.get("/keys", summary="List API keys (never the keys themselves)")
async def list_keys(request: Request) -> JSON:
    state = _state(request)
    return JSON([k.public() for k in await state.store.list_keys()])


@router.delete("/keys/{key_id}", summary="Revoke an API key")
async def revoke_key(request: Request, key_id: str) -> JSON:
    state = _state(request)
    for key in await state.store.list_keys():
        if key.id == key_id:
            key.revoked = True
            await state.store.put_key(key)
            return JSON({**key.public()})
    raise NotFound(f"API key {key_id} does not exist.")
