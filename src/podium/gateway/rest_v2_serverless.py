"""RunPod's REST API v2 for endpoints and templates (`/v2/serverless`, `/v2/templates`),
in the shapes of RunPod's published schema (../shared/specs/runpod-rest-v2.json; the
mapping onto Podium's records: endpoints/v2.py).

    GET    /v2/serverless                       {"endpoints": [Endpoint]}
    POST   /v2/serverless                       CreateEndpointRequest -> 201 Endpoint
    GET    /v2/serverless/{id}                  Endpoint
    PATCH  /v2/serverless/{id}                  UpdateEndpointRequest -> Endpoint
    DELETE /v2/serverless/{id}                  204
    GET    /v2/serverless/{id}/workers          {workers, summary, endpointVersion}
    GET    /v2/serverless/{id}/releases         {releases, rollout, endpointVersion}
    GET    /v2/serverless/{id}/workers/{w}/logs Server-Sent Events {source, line, ts}
    GET    /v2/templates                        {"templates": [Template]}
    POST   /v2/templates                        CreateTemplateRequest -> 201 Template
    GET    /v2/templates/{id}                   Template
    PATCH  /v2/templates/{id}                   UpdateTemplateRequest -> Template
    DELETE /v2/templates/{id}                   204 (409 while an endpoint uses it)

Admin scope. A key limited to some endpoints lists, reads and changes those endpoints (not
what their workers run: image, args, env, template, registry, volumes, GPUs) and nothing
else. The same records as /v1 and GraphQL: what one API creates, the others show. Errors are
v2's ErrorResponse; an unknown field is a 400 naming it (`$.gpu: additional properties
'bogus' not allowed`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from podium.board import summary
from podium.clock import iso_time
from podium.endpoints import Endpoint
from podium.endpoints.templates import Template, new_template_id
from podium.endpoints.v2 import (
    endpoint_changes,
    endpoint_view,
    release_view,
    rollout,
    template_view,
    worker_status,
)
from podium.errors import BadRequest, Forbidden, NotFound
from podium.gateway.admin_api import (
    check_references,
    create_endpoint_record,
    delete_template_record,
    update_endpoint_record,
)
from podium.gateway.auth import authenticate_client, authorize_client
from podium.gateway.http import JSON, CodecRoute
from podium.gateway.state import GatewayState, state_of
from podium.keys import ApiKey, Scope
from podium.logs.lines import LogQuery

__all__ = ["router"]

router = APIRouter(prefix="/v2", tags=["rest-v2"], route_class=CodecRoute)

_CUDA = r"^\d+\.\d+$"
FOLLOW_POLL_S = 0.5  # a followed worker log is read again this often


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Workers(_Strict):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    idleTimeout: int | None = Field(default=None, ge=1, le=3600)


class QueueDelay(_Strict):
    type: Literal["QUEUE_DELAY"]
    queueDelay: float = Field(ge=0.5)


class RequestCount(_Strict):
    type: Literal["REQUEST_COUNT"]
    requestCount: int = Field(ge=1)


Scaling = Annotated[QueueDelay | RequestCount, Field(discriminator="type")]


_LIST = 100  # at most this many entries in a list field (its record stays small)


class Gpu(_Strict):
    pools: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=_LIST
    )
    count: int | None = Field(default=None, ge=1)
    excludedTypes: list[Annotated[str, Field(max_length=200, pattern=r"^\s*[^-\s]")]] | None = (
        Field(default=None, max_length=_LIST)
    )
    allowedCudaVersions: list[Annotated[str, Field(pattern=_CUDA)]] | None = Field(
        default=None, max_length=_LIST
    )
    minCudaVersion: str | None = Field(default=None, pattern=r"^$|^\d+\.\d+$")


class Cpu(_Strict):
    id: str = Field(min_length=1, max_length=200)
    vcpuCount: int = Field(ge=2, le=1024)


class _Container(_Strict):
    image: str | None = Field(default=None, max_length=1000)
    args: str | None = Field(default=None, max_length=10_000)
    env: dict[str, str] | None = None
    ports: list[Annotated[str, Field(max_length=40)]] | None = Field(default=None, max_length=100)
    disk: int | None = Field(default=None, ge=1, le=1_000_000)
    registry: str | None = Field(default=None, max_length=100)


class EndpointUpdate(_Container):
    name: str | None = Field(default=None, min_length=1, max_length=191)
    templateId: str | None = Field(default=None, max_length=100)
    cpu: list[Cpu] | None = Field(default=None, min_length=1, max_length=20)
    dataCenterIds: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=100
    )
    flashboot: Literal["OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"] | None = None
    gpu: Gpu | None = None
    networkVolumes: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=100
    )
    scaling: Scaling | None = None
    timeout: int | None = None
    workers: Workers | None = None


class EndpointCreate(EndpointUpdate):
    name: str = Field(min_length=1, max_length=191)
    type: Literal["QUEUE", "LOAD_BALANCER"]
    scaling: Scaling


class Mounts(_Strict):
    class Persistent(_Strict):
        size: int = Field(ge=10, le=1_000_000)
        path: str = Field(max_length=1000)

    persistent: Persistent | None = None


class TemplateUpdate(_Container):
    name: str | None = Field(default=None, min_length=1, max_length=191)
    allowedCudaVersions: list[Annotated[str, Field(pattern=_CUDA)]] | None = Field(
        default=None, max_length=_LIST
    )
    category: Literal["CPU", "NVIDIA", "AMD"] | None = None
    mounts: Mounts | None = None
    public: bool | None = None
    serverless: bool | None = None
    startJupyter: bool | None = None
    startSsh: bool | None = None


class TemplateCreate(TemplateUpdate):
    name: str = Field(min_length=1, max_length=191)
    image: str = Field(min_length=1, max_length=1000)


_NULLABLE = frozenset({"registry", "minCudaVersion", "templateId"})


def _body(model: BaseModel) -> dict[str, Any]:
    """What the request named (nested too), as plain JSON values; null only where RunPod's
    schema allows it (`registry`, `gpu.minCudaVersion`; `templateId` on PATCH: none)."""
    given = dict(model.model_dump(exclude_unset=True, mode="json"))
    nulls = _nulls(given, "$")
    if nulls:
        raise BadRequest(f"Invalid request: {', '.join(nulls)} cannot be null.")
    return given


def _nulls(value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return []
    found = []
    for key, item in value.items():
        if item is None and key not in _NULLABLE:
            found.append(f"`{path}.{key}`")
        found += _nulls(item, f"{path}.{key}")
    return found


# --- who may call ------------------------------------------------------------------------


async def _caller(request: Request) -> ApiKey | None:
    """A key with the admin scope on at least one endpoint (None: insecure mode)."""
    key = await authenticate_client(request)
    if key is not None and not any(s == Scope.ADMIN for s in key.scopes):
        raise Forbidden("This API key lacks the `admin` scope.")
    return key


async def _endpoint(
    request: Request, endpoint_id: str
) -> tuple[GatewayState, Endpoint, ApiKey | None]:
    """The endpoint, for a key with the admin scope on it (and that key)."""
    key = await authorize_client(request, Scope.ADMIN, endpoint_id)
    state = state_of(request)
    return state, await state.endpoint(endpoint_id, fresh=True), key


# What a worker runs: only an admin of the whole gateway may set it (as on /v1).
_RUNS_ON_THE_FLEET = ("image", "args", "env", "templateId", "registry", "networkVolumes", "gpu")


async def _view(state: GatewayState, endpoint: Endpoint) -> dict[str, Any]:
    image = None
    if endpoint.spec.template_id is not None and endpoint.spec.image_name is None:
        template = await state.templates.get(endpoint.spec.template_id)
        image = template.image_name if template is not None else None
    return endpoint_view(endpoint, state.settings.base_url, image)


def _changes(body: dict[str, Any], kept: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return endpoint_changes(body, kept)
    except ValueError as exc:
        raise BadRequest(f"Invalid endpoint: {exc}.") from None


# --- endpoints ---------------------------------------------------------------------------


@router.get("/serverless", summary="Endpoints (RunPod v2)")
async def list_endpoints(request: Request) -> JSON:
    key = await _caller(request)
    state = state_of(request)
    endpoints = [
        e
        for e in await state.store.list_endpoints()
        if key is None or key.allows(Scope.ADMIN, e.id)
    ]
    return JSON({"endpoints": [await _view(state, e) for e in endpoints]})


@router.post("/serverless", summary="Create an endpoint (RunPod v2)", status_code=201)
async def create_endpoint(request: Request, body: EndpointCreate) -> JSON:
    await authorize_client(request, Scope.ADMIN)  # a new endpoint: the whole gateway's
    state = state_of(request)
    given = _body(body)
    if "templateId" not in given and not given.get("image"):
        raise BadRequest("Invalid endpoint: give `templateId` or `image`.")
    changes, kept = _changes(given, {})
    if not given.get("gpu") and not given.get("cpu"):
        changes.setdefault("gpu_count", 1)
    changes.setdefault("execution_timeout_ms", 300_000)  # v2's default `timeout`
    changes.setdefault("idle_timeout", 10.0)  # v2's default `workers.idleTimeout`
    endpoint, _token = await create_endpoint_record(state, changes, kept)
    return JSON(await _view(state, endpoint), status_code=201)


@router.get("/serverless/{endpoint_id}", summary="One endpoint (RunPod v2)")
async def get_endpoint(request: Request, endpoint_id: str) -> JSON:
    state, endpoint, _ = await _endpoint(request, endpoint_id)
    return JSON(await _view(state, endpoint))


@router.patch("/serverless/{endpoint_id}", summary="Change an endpoint (RunPod v2)")
async def update_endpoint(request: Request, endpoint_id: str, body: EndpointUpdate) -> JSON:
    state, endpoint, key = await _endpoint(request, endpoint_id)
    given = _body(body)
    runs = sorted(f for f in _RUNS_ON_THE_FLEET if f in given)
    if key is not None and key.endpoints and runs:
        raise Forbidden(
            f"Changing {', '.join(runs)} changes what runs on the fleet's machines: it needs "
            "an admin key for every endpoint, not one limited to some."
        )
    if not given:
        raise BadRequest("Give at least one setting to change.")
    changes, kept = _changes(given, endpoint.v2_fields)
    if given.get("image") and endpoint.spec.template_id not in (None, "custom"):
        changes.setdefault("template_id", None)
    updated = await update_endpoint_record(state, endpoint_id, changes, kept)
    return JSON(await _view(state, updated))


@router.delete("/serverless/{endpoint_id}", summary="Delete an endpoint (RunPod v2)")
async def delete_endpoint(request: Request, endpoint_id: str) -> Response:
    state, _, _ = await _endpoint(request, endpoint_id)
    await state.store.delete_endpoint(endpoint_id)
    state.lookups.forget_endpoint(endpoint_id)
    return Response(status_code=204)


@router.get("/serverless/{endpoint_id}/workers", summary="An endpoint's workers (RunPod v2)")
async def endpoint_workers(request: Request, endpoint_id: str) -> JSON:
    state, endpoint, _ = await _endpoint(request, endpoint_id)
    now = state.clock.now()
    entries = await state.workers(endpoint_id)
    workers = []
    for entry in entries:
        shown = entry.public(now, show_jobs=False)
        version = entry.supervised.version if entry.supervised is not None else None
        workers.append(
            {
                "id": entry.id,
                "status": worker_status(entry.status),
                "gpuCount": shown["gpuCount"],
                "isStale": version is not None and version != endpoint.version,
                "startedAt": shown["startedAt"],
                "uptimeSeconds": shown["uptimeSeconds"],
                "version": version,
                "image": endpoint.spec.image_name,
                "gpuTypeId": None,
                "dataCenterId": None,
            }
        )
    body = {"workers": workers, "summary": summary(entries), "endpointVersion": endpoint.version}
    return JSON(body)


@router.get("/serverless/{endpoint_id}/releases", summary="An endpoint's releases (RunPod v2)")
async def endpoint_releases(request: Request, endpoint_id: str) -> JSON:
    """Each change of what the workers run (image, args, env, template, GPUs ...) is a
    release: `endpointVersion` + 1. `rollout`: the live workers the fleet runs, how many
    run the latest version (older ones are drained and replaced)."""
    state, endpoint, _ = await _endpoint(request, endpoint_id)
    versions = [
        w.version
        for w in state.fleet.of(endpoint_id)
        if w.phase.value in ("starting", "ready", "draining")
    ]
    releases = [
        release_view(r, sum(1 for v in versions if v == r["version"])) for r in endpoint.releases
    ]
    return JSON(
        {
            "releases": releases,
            "rollout": rollout(versions, endpoint.version),
            "endpointVersion": endpoint.version,
        }
    )


@router.get(
    "/serverless/{endpoint_id}/workers/{worker_id}/logs",
    summary="A worker's log as Server-Sent Events (RunPod v2)",
    response_class=StreamingResponse,
)
async def worker_logs(
    request: Request,
    endpoint_id: str,
    worker_id: str,
    tail: Annotated[int, Query(ge=1, le=10_000)] = 100,
    follow: bool = True,
) -> StreamingResponse:
    """`{source, line, ts}` events: the worker's last `tail` lines, then (follow) each new
    one as the store receives it. The event id is the line's sequence number."""
    state, _, _ = await _endpoint(request, endpoint_id)
    last = request.headers.get("last-event-id")
    after = None
    if last is not None:
        if not (last.isascii() and last.isdigit() and int(last) < 2**63):
            raise BadRequest("`Last-Event-ID` must be an event id this route sent (a line's seq).")
        after = int(last)

    async def events() -> AsyncIterator[bytes]:
        cursor = after
        while True:
            query = LogQuery(worker=worker_id, tail=tail if cursor is None else 1000, since=cursor)
            page = await state.store.logs.read(endpoint_id, query)
            for line in page.lines:
                event = {
                    # the fleet's own notes (`--- podium: ...`) are the system's
                    "source": "system" if line.text.startswith("--- podium") else "container",
                    "line": line.text,
                    "ts": iso_time(line.at),
                }
                yield f"id: {line.seq}\ndata: {json.dumps(event)}\n\n".encode()
            cursor = page.cursor
            if not follow or await request.is_disconnected():
                return
            await asyncio.sleep(FOLLOW_POLL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


# --- templates ---------------------------------------------------------------------------

_TEMPLATE_KEPT = (
    "disk",
    "ports",
    "mounts",
    "serverless",
    "public",
    "category",
    "startSsh",
    "startJupyter",
    "allowedCudaVersions",
)


def _template_fields(given: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    return {**kept, **{k: given[k] for k in _TEMPLATE_KEPT if k in given}}


async def _created(state: GatewayState, template_id: str) -> Template:
    template = await state.templates.get(template_id)
    if template is None or template.builtin:
        raise NotFound(f"The template {template_id[:200]} does not exist.")
    return template


@router.get("/templates", summary="Templates (RunPod v2)")
async def list_templates(request: Request) -> JSON:
    await authorize_client(request, Scope.ADMIN)
    state = state_of(request)
    return JSON({"templates": [template_view(t) for t in await state.templates.created()]})


@router.post("/templates", summary="Create a template (RunPod v2)", status_code=201)
async def create_template(request: Request, body: TemplateCreate) -> JSON:
    await authorize_client(request, Scope.ADMIN)
    state = state_of(request)
    given = _body(body)
    await check_references(state, None, given.get("registry"))
    template = Template(
        id=new_template_id(),
        name=body.name,
        command=(body.args or "").strip() or None,
        env=dict(body.env or {}),
        created_at=state.clock.now(),
        image_name=body.image,
        registry_id=body.registry,
        v2_fields=_template_fields(given, {}),
    )
    return JSON(template_view(await state.templates.add(template)), status_code=201)


@router.get("/templates/{template_id}", summary="One template (RunPod v2)")
async def get_template(request: Request, template_id: str) -> JSON:
    await authorize_client(request, Scope.ADMIN)
    return JSON(template_view(await _created(state_of(request), template_id)))


@router.patch("/templates/{template_id}", summary="Change a template (RunPod v2)")
async def update_template(request: Request, template_id: str, body: TemplateUpdate) -> JSON:
    """A change to what its workers run (image, args, env, registry) is a new release of
    every endpoint that uses it: their workers are replaced."""
    await authorize_client(request, Scope.ADMIN)
    state = state_of(request)
    old = await _created(state, template_id)
    given = _body(body)
    if not given:
        raise BadRequest("Give at least one field to change.")
    if "registry" in given:
        await check_references(state, None, given["registry"])
    new = Template(
        id=old.id,
        name=given.get("name", old.name),
        command=((given["args"] or "").strip() or None) if "args" in given else old.command,
        env=dict(given["env"]) if "env" in given else dict(old.env),
        created_at=old.created_at,
        image_name=given.get("image", old.image_name),
        registry_id=given.get("registry", old.registry_id),
        v2_fields=_template_fields(given, old.v2_fields),
    )
    await state.templates.replace(new)
    runs = (new.command, new.env, new.image_name, new.registry_id)
    if runs != (old.command, old.env, old.image_name, old.registry_id):
        for endpoint in await state.store.list_endpoints():
            if endpoint.spec.template_id == template_id:
                diff = [
                    {"field": f"template.{name}", "old": before, "new": after}
                    for name, before, after in zip(
                        ("args", "env", "image", "registry"),
                        (old.command, old.env, old.image_name, old.registry_id),
                        runs,
                        strict=True,
                    )
                    if before != after
                ]
                endpoint.add_release(diff, state.clock.now())
                await state.store.put_endpoint(endpoint)
                state.lookups.forget_endpoint(endpoint.id)
    return JSON(template_view(new))


@router.delete("/templates/{template_id}", summary="Delete a template (RunPod v2)")
async def delete_template(request: Request, template_id: str) -> Response:
    await authorize_client(request, Scope.ADMIN)
    state = state_of(request)
    await _created(state, template_id)
    await delete_template_record(state, template_id)
    return Response(status_code=204)
