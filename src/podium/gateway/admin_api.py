"""The admin API, `/v1/...`: endpoints, templates, GPUs and API keys (admin scope), and
an endpoint's workers list (`reader`: any key that may read that endpoint)."""

from __future__ import annotations

import re
import secrets
import shlex
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from podium.board import Inventory
from podium.board import summary as worker_summary
from podium.endpoints import BUILTIN_TEMPLATES, WIRE_NAMES, Endpoint, EndpointSpec
from podium.endpoints.gpu_ids import gpu_ids_from_types
from podium.endpoints.loadbalancer import lb_url
from podium.endpoints.templates import Template, new_template_id
from podium.errors import BadRequest, Conflict, Forbidden, NotFound
from podium.gateway.auth import authorize_client
from podium.gateway.http import JSON, CodecRoute
from podium.gateway.input_schema import validate_schema
from podium.gateway.state import GatewayState, state_of
from podium.keys import ApiKey, Scope, hash_secret, new_key
from podium.store.records import registries, volumes

__all__ = ["reader", "router"]

NO_FLEET = "No fleet runs beside this gateway: its workers are started elsewhere."
_SNAPSHOT_KEY = re.compile(r"[0-9a-f]{24}")


async def _admin(request: Request) -> ApiKey | None:
    """Admin scope; on a route naming an endpoint, for that endpoint (a key limited to
    some endpoints administers those, and nothing gateway-wide). A route that needs the
    key declares this dependency again: FastAPI runs it once per request."""
    return await authorize_client(request, Scope.ADMIN, request.path_params.get("endpoint_id"))


AdminKey = Annotated[ApiKey | None, Depends(_admin)]


router = APIRouter(
    prefix="/v1", tags=["admin"], dependencies=[Depends(_admin)], route_class=CodecRoute
)
# Routes each checks its own scope on: a key limited to some endpoints may call them for
# the endpoints it can read.
reader = APIRouter(prefix="/v1", tags=["admin"], route_class=CodecRoute)


# What a worker process runs: only an admin of the whole gateway may change it (set, or
# cleared with null: clearing templateId also clears command and model).
_RUNS_ON_THE_FLEET = (
    "command",
    "containerRegistryAuthId",
    "env",
    "imageName",
    "model",
    "networkVolumeId",
    "templateId",
)


class EndpointUpdate(BaseModel):
    """PATCH: any subset of the settings. Types only; ranges are checked by
    EndpointSpec.validate, which names every problem at once."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    templateId: str | None = None
    workersMin: int | None = None
    workersMax: int | None = None
    idleTimeout: float | None = None
    scalerType: str | None = None
    scalerValue: float | None = None
    gpuIds: str | None = None
    gpuCount: int | None = None
    flashboot: bool | None = None
    env: dict[str, str] | None = None
    model: str | None = None
    command: str | None = None
    executionTimeoutMs: int | None = None
    retryLimit: int | None = None
    retentionRunMs: int | None = None
    retentionSyncMs: int | None = None
    inputSchema: dict[str, Any] | None = None
    imageName: str | None = Field(default=None, max_length=1000)
    networkVolumeId: str | None = Field(default=None, max_length=100)
    containerRegistryAuthId: str | None = Field(default=None, max_length=100)
    type: str | None = Field(default=None, max_length=40)  # QUEUE or LOAD_BALANCER
    # RunPod's REST name: GPU type names as a list (Podium keeps them in gpuIds)
    gpuTypeIds: list[str] | None = None


class EndpointCreate(EndpointUpdate):
    name: str = Field(min_length=1, max_length=191)


class TemplateCreate(BaseModel):
    """Podium's {name, command, env}, or RunPod's REST body: `imageName` (its workers are
    containers of it) with `dockerStartCmd` (and `dockerEntrypoint`) as its start command,
    `containerRegistryAuthId` its pull credentials; the container fields Podium has no use
    for are accepted and ignored."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=191)
    command: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    imageName: str | None = Field(default=None, max_length=1000)
    dockerStartCmd: list[str] | None = None
    dockerEntrypoint: list[str] | None = None
    containerRegistryAuthId: str | None = Field(default=None, max_length=100)
    # RunPod's, accepted and ignored (sizes and ports of RunPod's own machines)
    category: str | None = None
    containerDiskInGb: int | None = None
    isPublic: bool | None = None
    isServerless: bool | None = None
    ports: list[str] | None = None
    readme: str | None = None
    volumeInGb: int | None = None
    volumeMountPath: str | None = None

    def command_line(self) -> str | None:
        """The command (None: an image's own)."""
        argv = [*(self.dockerEntrypoint or []), *(self.dockerStartCmd or [])]
        if self.command is not None and argv:
            raise BadRequest("Invalid template: give `command` or `dockerStartCmd`, not both.")
        if self.command is not None:
            return self.command
        return shlex.join(argv) if argv else None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="key", min_length=1, max_length=191)
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.RUN], min_length=1)
    endpoints: list[str] = Field(default_factory=list)


# Fields an explicit null may clear; other settings cannot be null.
_NULLABLE = {
    "template_id",
    "model",
    "command",
    "retention_run_ms",
    "retention_sync_ms",
    "input_schema",
    "image_name",
    "network_volume_id",
    "registry_id",
}


def _changes(body: EndpointUpdate) -> dict[str, Any]:
    """Wire names given in the body -> EndpointSpec fields. An explicit null clears the
    optional ones (templateId, model, command, retention, inputSchema; an empty
    containerRegistryAuthId or networkVolumeId is none, as RunPod's clients send). RunPod's
    `gpuTypeIds` (a list of GPU type names) sets gpuIds."""
    given = body.model_dump(exclude_unset=True)
    types = given.pop("gpuTypeIds", None)
    changes = {WIRE_NAMES[k]: v for k, v in given.items()}
    for reference in ("registry_id", "network_volume_id"):
        if changes.get(reference) == "":  # RunPod's clients send "" for none
            changes[reference] = None
    if types is not None:
        if "gpu_ids" in changes:
            raise BadRequest("Invalid endpoint: give `gpuIds` or `gpuTypeIds`, not both.")
        try:
            changes["gpu_ids"] = gpu_ids_from_types(types)
        except ValueError as exc:
            raise BadRequest(f"Invalid endpoint: {exc}.") from None
    return changes


async def _validate(state: GatewayState, spec: EndpointSpec) -> None:
    created = None
    if spec.template_id is not None and spec.template_id not in BUILTIN_TEMPLATES:
        created = [t.id for t in await state.templates.created()]
    spec.validate(created)
    if spec.input_schema is not None:
        validate_schema(spec.input_schema)
    await check_references(state, spec.network_volume_id, spec.registry_id)


async def check_references(
    state: GatewayState, volume_id: str | None, registry_id: str | None
) -> None:
    """The network volume and the registry an endpoint or template names must exist."""
    if volume_id is not None and await volumes(state.store).get(volume_id) is None:
        raise BadRequest(
            f"Invalid endpoint: `networkVolumeId` {volume_id[:100]!r} names no network volume "
            "(see GET /v2/network-volumes)."
        )
    if registry_id is not None and await registries(state.store).get(registry_id) is None:
        raise BadRequest(
            f"`containerRegistryAuthId` {registry_id[:100]!r} names no registry "
            "(see GET /v2/registries)."
        )


async def _shown(
    state: GatewayState, endpoint: Endpoint, workers: bool, template: bool
) -> dict[str, Any]:
    """An endpoint as /v1 shows it; RunPod's `includeWorkers` / `includeTemplate` add its
    supervised workers and its template."""
    body = endpoint.public()
    if workers:
        now = state.clock.now()
        body["workers"] = [e.public(now) for e in await state.workers(endpoint.id)]
    if template:
        tid = endpoint.spec.template_id
        found = None if tid is None else await state.templates.get(tid)
        body["template"] = None if found is None else found.public()
    return body


async def create_endpoint_record(
    state: GatewayState, changes: dict[str, Any], v2_fields: dict[str, Any] | None = None
) -> tuple[Endpoint, str]:
    """Validate and store a new endpoint (EndpointSpec field names; `v2_fields`: REST v2's
    kept-as-given settings); (endpoint, token)."""
    changes = {k: v for k, v in changes.items() if v is not None or k in _NULLABLE}
    name = changes.pop("name")
    spec = EndpointSpec(name=name).updated(changes)  # a load balancer: REQUEST_COUNT
    await _validate(state, spec)
    endpoint, token = Endpoint.create(spec, state.clock.now())
    endpoint.v2_fields = dict(v2_fields or {})
    await state.store.put_endpoint(endpoint)
    return endpoint, token


async def update_endpoint_record(
    state: GatewayState,
    endpoint_id: str,
    changes: dict[str, Any],
    v2_fields: dict[str, Any] | None = None,
) -> Endpoint:
    """Apply changes (EndpointSpec field names) to an endpoint: PATCH, its POST alias,
    GraphQL's updateEndpointTemplate and REST v2's PATCH (`v2_fields`: its kept-as-given
    settings, None: unchanged)."""
    endpoint = await state.endpoint(endpoint_id, fresh=True)
    bad_nulls = sorted(
        wire
        for wire, name in WIRE_NAMES.items()
        if name in changes and changes[name] is None and name not in _NULLABLE
    )
    if bad_nulls:
        raise BadRequest(f"Invalid endpoint: {', '.join(bad_nulls)} cannot be null.")
    if changes.get("template_id", endpoint.spec.template_id) != endpoint.spec.template_id:
        # Settings of the old template do not carry over to the new one.
        changes.setdefault("command", None)
        changes.setdefault("model", None)
    spec = endpoint.spec.updated(changes)
    await _validate(state, spec)
    before, endpoint.spec = endpoint.spec, spec
    endpoint.release(before, state.clock.now())  # what the workers run changed: a release
    if v2_fields is not None:
        endpoint.v2_fields = dict(v2_fields)
    await state.store.put_endpoint(endpoint)
    state.lookups.forget_endpoint(endpoint_id)
    return endpoint


async def create_template_record(
    state: GatewayState,
    name: str,
    command: str | None,
    env: dict[str, str],
    image_name: str | None,
    registry_id: str | None = None,
) -> Template:
    await check_references(state, None, registry_id)
    template = Template(
        id=new_template_id(),
        name=name,
        command=command,
        env=env,
        created_at=state.clock.now(),
        image_name=image_name,
        registry_id=registry_id,
    )
    return await state.templates.add(template)


# --- endpoints -----------------------------------------------------------------------


@router.post("/endpoints", summary="Create an endpoint; returns its worker token once")
async def create_endpoint(request: Request, body: EndpointCreate) -> JSON:
    state = state_of(request)
    endpoint, token = await create_endpoint_record(state, _changes(body))
    return JSON(
        {
            **endpoint.public(),
            "workerToken": token,
            "webhookSecret": endpoint.webhook_secret,
            "url": lb_url(state.settings.base_url, endpoint.id)
            if endpoint.spec.load_balancer
            else f"{state.settings.base_url}/v2/{endpoint.id}",
        }
    )


@router.get("/endpoints", summary="List endpoints")
async def list_endpoints(
    request: Request, includeWorkers: bool = False, includeTemplate: bool = False
) -> JSON:
    state = state_of(request)
    return JSON(
        [
            await _shown(state, e, includeWorkers, includeTemplate)
            for e in await state.store.list_endpoints()
        ]
    )


@router.get("/endpoints/{endpoint_id}", summary="One endpoint, with its supervised workers")
async def get_endpoint(
    request: Request, endpoint_id: str, includeWorkers: bool = True, includeTemplate: bool = False
) -> JSON:
    """Workers are shown unless `includeWorkers=false` (RunPod: only with true)."""
    state = state_of(request)
    endpoint = await state.endpoint(endpoint_id, fresh=True)
    return JSON(await _shown(state, endpoint, includeWorkers, includeTemplate))


@router.patch("/endpoints/{endpoint_id}", summary="Change an endpoint's settings")
async def update_endpoint(
    request: Request, endpoint_id: str, body: EndpointUpdate, key: AdminKey
) -> JSON:
    state = state_of(request)
    runs = sorted(f for f in _RUNS_ON_THE_FLEET if f in body.model_fields_set)
    if key is not None and key.endpoints and runs:
        raise Forbidden(
            f"Changing {', '.join(runs)} changes what runs on the fleet's machines: it needs "
            "an admin key for every endpoint, not one limited to some."
        )
    endpoint = await update_endpoint_record(state, endpoint_id, _changes(body))
    return JSON(await _shown(state, endpoint, workers=True, template=False))


@router.post(
    "/endpoints/{endpoint_id}/update", summary="Change an endpoint (RunPod's alias of PATCH)"
)
async def update_endpoint_post(
    request: Request, endpoint_id: str, body: EndpointUpdate, key: AdminKey
) -> JSON:
    return await update_endpoint(request, endpoint_id, body, key)


@router.delete("/endpoints/{endpoint_id}", summary="Delete an endpoint, its queue and workers")
async def delete_endpoint(request: Request, endpoint_id: str) -> JSON:
    state = state_of(request)
    deleted = await state.store.delete_endpoint(endpoint_id)
    state.lookups.forget_endpoint(endpoint_id)
    if not deleted:
        raise NotFound(f"Endpoint {endpoint_id} does not exist.")
    # The supervisor notices on its next tick and stops the endpoint's workers.
    return JSON({"id": endpoint_id, "deleted": True})


@reader.get(
    "/endpoints/{endpoint_id}/workers",
    summary="The endpoint's workers: node, GPUs, status, current jobs (RunPod's workers list)",
)
async def endpoint_workers(request: Request, endpoint_id: str) -> JSON:
    """Every worker of the endpoint: the ones the fleet runs, and the ones started
    elsewhere that pinged within a lease; `summary` counts them by RunPod's statuses.
    A key with the read scope on the endpoint may list them; the current job ids are
    shown to keys with the admin scope only (a job id lets a key read that job)."""
    state = state_of(request)
    key = await authorize_client(request, Scope.READ, endpoint_id)
    await state.endpoint(endpoint_id)
    show_jobs = key is None or key.allows(Scope.ADMIN, endpoint_id)
    entries = await state.workers(endpoint_id)
    now = state.clock.now()
    snapshots = state.fleet.snapshots.get(endpoint_id)
    return JSON(
        {
            "workers": [e.public(now, show_jobs) for e in entries],
            "summary": worker_summary(entries),
            "endpointVersion": None,  # RunPod's configuration version: Podium has none
            # its snapshot images on this fleet and how restores went (docs/snapshots.md)
            "snapshots": snapshots.public() if snapshots is not None else None,
        }
    )


# --- templates -----------------------------------------------------------------------


@router.get("/templates", summary="Templates: the built-ins (sd15, custom) and created ones")
async def list_templates(request: Request) -> JSON:
    state = state_of(request)
    return JSON([t.public() for t in await state.templates.all()])


@router.post("/templates", summary="Create a template: a command and env for endpoints")
async def create_template(request: Request, body: TemplateCreate) -> JSON:
    state = state_of(request)
    template = await create_template_record(
        state,
        body.name,
        body.command_line(),
        body.env,
        body.imageName,
        body.containerRegistryAuthId or None,  # "" is none, as RunPod sends
    )
    return JSON(template.public())


@router.get("/templates/{template_id}", summary="One template")
async def get_template(request: Request, template_id: str) -> JSON:
    state = state_of(request)
    return JSON((await state.templates.require(template_id)).public())


@router.delete("/templates/{template_id}", summary="Delete a template no endpoint uses")
async def delete_template(request: Request, template_id: str) -> JSON:
    await delete_template_record(state_of(request), template_id)
    return JSON({"id": template_id, "deleted": True})


async def delete_template_record(state: GatewayState, template_id: str) -> None:
    """Delete a created template (v1 and v2): Conflict while an endpoint names it."""
    users = [e.id for e in await state.store.list_endpoints() if e.spec.template_id == template_id]
    if users:
        raise Conflict(
            f"Template {template_id} is used by endpoint(s) {', '.join(users)}; "
            "delete them or change their templateId first."
        )
    await state.templates.delete(template_id)


# --- snapshots -----------------------------------------------------------------------


@router.get("/snapshots", summary="The snapshot images this host keeps (docs/snapshots.md)")
async def list_snapshots(request: Request) -> JSON:
    """Every image the local fleet keeps for snapshot cold starts: key, endpoint, bytes,
    restores. `enabled` false: this fleet takes none (no CRIU >= 4, not root, off)."""
    state = state_of(request)
    found = await state.fleet_access.snapshots() if state.fleet_access is not None else None
    return JSON(
        {
            "enabled": found is not None,
            "snapshots": found or [],
            "bytes": sum(s["bytes"] for s in found or []),
        }
    )


@router.delete("/snapshots/{key}", summary="Delete one snapshot image")
async def delete_snapshot(request: Request, key: str) -> JSON:
    """The next cold start of its endpoint starts the program (and takes a new one)."""
    state = state_of(request)
    if not _SNAPSHOT_KEY.fullmatch(key):
        raise BadRequest(f"{key[:40]!r} is not a snapshot key (24 hexadecimal digits).")
    gone = state.fleet_access is not None and await state.fleet_access.delete_snapshot(key)
    if not gone:
        raise NotFound(f"No snapshot {key} on this host.")
    return JSON({"key": key, "deleted": True})


# --- GPUs ----------------------------------------------------------------------------


@router.get("/gpus", summary="This machine's GPUs and which worker holds each")
async def list_gpus(request: Request) -> JSON:
    state = state_of(request)
    if state.fleet_access is not None:
        inventory = await state.fleet_access.inventory()
    else:
        inventory = state.fleet.inventory or Inventory((), "none", NO_FLEET)
    holders = state.fleet.gpu_holders()
    return JSON(
        {
            "gpus": [
                {**g.public(), "worker": holders.get((g.node, g.index))} for g in inventory.gpus
            ],
            "source": inventory.source,
            "warning": inventory.warning,
            "supervisor": state.fleet.supervised,
            # the engine image workers run on ("podman 4.3.1"), None without one
            "containerEngine": state.fleet.engine,
        }
    )


# --- API keys ------------------------------------------------------------------------


@router.post("/keys", summary="Create an API key; the key is shown once")
async def create_key(request: Request, body: KeyCreate) -> JSON:
    state = state_of(request)
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
    state = state_of(request)
    return JSON([k.public() for k in await state.store.list_keys()])


@router.delete("/keys/{key_id}", summary="Revoke an API key")
async def revoke_key(request: Request, key_id: str) -> JSON:
    state = state_of(request)
    for key in await state.store.list_keys():
        if key.id == key_id:
            key.revoked = True
            await state.store.put_key(key)
            state.lookups.forget_key(key.hash)
            return JSON({**key.public()})
    raise NotFound(f"API key {key_id} does not exist.")
