"""RunPod's REST API v2 (`/v2/...`, Bearer admin key), in RunPod's shapes
(../shared/specs/runpod-rest-v2.json): network volumes and container registries.

    GET    /v2/network-volumes          {"networkVolumes": [NetworkVolume]}
    POST   /v2/network-volumes          {name, size, dataCenter, type?} -> 201 NetworkVolume
    GET    /v2/network-volumes/{id}     NetworkVolume
    PATCH  /v2/network-volumes/{id}     {name?, size?} -> NetworkVolume
    DELETE /v2/network-volumes/{id}     204; 409 while an endpoint uses it (its data goes)
    GET    /v2/registries               {"registries": [Registry]}
    POST   /v2/registries               {name, username, password} -> 201 Registry
    GET    /v2/registries/{id}          Registry (never the credentials)
    DELETE /v2/registries/{id}          204; 409 while an endpoint or template uses it

Errors are RunPod's v2 ErrorResponse `{title, status, detail, errors}` (gateway/errors.py).
These resources are gateway-wide: an admin key limited to some endpoints gets 403. Paths
cannot meet the client API's `/v2/{endpoint_id}/...`: an endpoint id is 14 lowercase
letters and digits, never `network-volumes` or `registries`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from podium.endpoints.volumes import (
    VOLUME_SIZE_GB,
    NetworkVolume,
    Registry,
    new_registry_id,
    new_volume_id,
    volume_dir,
)
from podium.errors import BadRequest, Conflict
from podium.gateway.auth import authorize_client
from podium.gateway.http import JSON, CodecRoute
from podium.gateway.state import GatewayState, state_of
from podium.keys import ApiKey, Scope
from podium.store.records import RegistryPasswords, TemplateCatalog, registries, volumes

__all__ = ["REST_V2_PREFIXES", "router"]

# The resources of RunPod's REST v2 served here (errors in its ErrorResponse shape).
REST_V2_PREFIXES = ("/v2/network-volumes", "/v2/registries", "/v2/serverless", "/v2/templates")


async def _gateway_admin(request: Request) -> ApiKey | None:
    """Admin of the whole gateway (a key limited to some endpoints: 403)."""
    return await authorize_client(request, Scope.ADMIN)


router = APIRouter(
    prefix="/v2",
    tags=["rest-v2"],
    dependencies=[Depends(_gateway_admin)],
    route_class=CodecRoute,
)

_LOW, _HIGH = VOLUME_SIZE_GB


class VolumeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=191)
    size: int = Field(ge=_LOW, le=_HIGH)
    dataCenter: str = Field(min_length=1, max_length=100)
    type: str = "STANDARD"


class VolumeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=191)
    size: int | None = Field(default=None, ge=_LOW, le=_HIGH)


class RegistryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=191)
    username: str = Field(min_length=1, max_length=1000)
    password: str = Field(min_length=1, max_length=10_000)


# --- network volumes ---------------------------------------------------------------------


def _directory(state: GatewayState, volume_id: str) -> Path:
    return Path(volume_dir(str(state.settings.volume_root), volume_id))


@router.get("/network-volumes", summary="Network volumes (RunPod v2)")
async def list_volumes(request: Request) -> JSON:
    state = state_of(request)
    return JSON({"networkVolumes": [v.public() for v in await volumes(state.store).all()]})


@router.post("/network-volumes", summary="Create a network volume", status_code=201)
async def create_volume(request: Request, body: VolumeCreate) -> JSON:
    state = state_of(request)
    volume = NetworkVolume(
        id=new_volume_id(),
        name=body.name,
        size=body.size,
        data_center=body.dataCenter,
        type=body.type,
        created_at=state.clock.now(),
    )
    await volumes(state.store).add(volume)
    _directory(state, volume.id).mkdir(parents=True, exist_ok=True)
    return JSON(volume.public(), status_code=201)


@router.get("/network-volumes/{volume_id}", summary="One network volume")
async def get_volume(request: Request, volume_id: str) -> JSON:
    state = state_of(request)
    return JSON((await volumes(state.store).require(volume_id)).public())


@router.patch("/network-volumes/{volume_id}", summary="Rename or resize a network volume")
async def update_volume(request: Request, volume_id: str, body: VolumeUpdate) -> JSON:
    state = state_of(request)
    records = volumes(state.store)
    volume = await records.require(volume_id)
    if not body.model_fields_set:
        raise BadRequest("Give `name` or `size` to change.")
    if body.size is not None and body.size < volume.size:
        raise BadRequest(
            f"`size` {body.size} is below the volume's {volume.size} GB: a network volume "
            "only grows (as on RunPod)."
        )
    changed = NetworkVolume(
        id=volume.id,
        name=body.name if body.name is not None else volume.name,
        size=body.size if body.size is not None else volume.size,
        data_center=volume.data_center,
        type=volume.type,
        created_at=volume.created_at,
    )
    await records.replace(changed)
    return JSON(changed.public())


@router.delete("/network-volumes/{volume_id}", summary="Delete a network volume and its data")
async def delete_volume(request: Request, volume_id: str) -> Response:
    state = state_of(request)
    await volumes(state.store).require(volume_id)
    users = [
        e.id for e in await state.store.list_endpoints() if e.spec.network_volume_id == volume_id
    ]
    if users:
        raise Conflict(
            f"Network volume {volume_id} is used by endpoint(s) {', '.join(users)}; "
            "change their networkVolumeId first."
        )
    await volumes(state.store).delete(volume_id)
    shutil.rmtree(_directory(state, volume_id), ignore_errors=True)
    return Response(status_code=204)


# --- registries ------------------------------------------------------------------------


@router.get("/registries", summary="Container registry credentials (RunPod v2)")
async def list_registries(request: Request) -> JSON:
    state = state_of(request)
    return JSON({"registries": [r.public() for r in await registries(state.store).all()]})


@router.post("/registries", summary="Store credentials for a container registry", status_code=201)
async def create_registry(request: Request, body: RegistryCreate) -> JSON:
    """The password is write-only: kept in a 0600 file of this gateway's data dir, never in
    the store, never shown or logged."""
    state = state_of(request)
    registry = Registry(
        id=new_registry_id(), name=body.name, username=body.username, created_at=state.clock.now()
    )
    await registries(state.store).add(registry)
    RegistryPasswords(state.settings.data_dir).put(registry.id, body.username, body.password)
    return JSON(registry.public(), status_code=201)


@router.get("/registries/{registry_id}", summary="One registry (never its credentials)")
async def get_registry(request: Request, registry_id: str) -> JSON:
    state = state_of(request)
    return JSON((await registries(state.store).require(registry_id)).public())


@router.delete("/registries/{registry_id}", summary="Delete a registry's credentials")
async def delete_registry(request: Request, registry_id: str) -> Response:
    state = state_of(request)
    await registries(state.store).require(registry_id)
    users = [e.id for e in await state.store.list_endpoints() if e.spec.registry_id == registry_id]
    users += [
        t.id for t in await TemplateCatalog(state.store).created() if t.registry_id == registry_id
    ]
    if users:
        raise Conflict(
            f"Registry {registry_id} is used by {', '.join(users)}; change their "
            "containerRegistryAuthId first."
        )
    await registries(state.store).delete(registry_id)
    RegistryPasswords(state.settings.data_dir).delete(registry_id)
    return Response(status_code=204)


def error_body(
    status: int, title: str, detail: str, errors: list[str] | None = None
) -> dict[str, Any]:
    """RunPod's v2 ErrorResponse."""
    body: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return body
