"""`POST /graphql`: the GraphQL operations the runpod SDK 1.12 sends to
`RUNPOD_API_BASE_URL/graphql`, served with the admin key, so that `runpod.create_template`,
`runpod.create_endpoint`, `runpod.get_endpoints` and `runpod.update_endpoint_template` work
against Podium unchanged:

    mutation { saveTemplate(input: {...}) { ... } }             create_template
    mutation { saveEndpoint(input: {...}) { ... } }             create_endpoint
    query { myself { endpoints { ... } } }                      get_endpoints
    mutation { updateEndpointTemplate(input: {...}) { ... } }   update_endpoint_template

Every other operation is refused with a GraphQL error that names what is served. The
schema below holds exactly the fields those calls send and select; graphql-core parses,
validates and executes (errors answer `{"errors": [{"message"}]}`, as the SDK reads them).

RunPod's fields that mean nothing here (container disk, ports, network volumes, locations,
CUDA versions) are accepted and echoed, never used; `dockerArgs` is the command Podium
runs, and RunPod's GPU pools (`AMPERE_16`, `ADA_24`, ...) become a minimum GPU memory.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from graphql import (
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    graphql,
    parse,
)
from graphql.language import FieldNode

from podium import codec
from podium.clock import iso_time
from podium.endpoints import Endpoint
from podium.endpoints.gpu_ids import gpu_ids_for_pools
from podium.errors import Forbidden, PodiumError, Unauthorized
from podium.gateway.admin_api import (
    create_endpoint_record,
    create_template_record,
    update_endpoint_record,
)
from podium.gateway.auth import authorize_client
from podium.gateway.http import JSON, ROUTE_BODY_BYTES, json_body, read_body
from podium.gateway.state import GatewayState, state_of
from podium.keys import Scope

__all__ = ["router"]

router = APIRouter(tags=["admin"])

SDL = """
type Query { myself: User }
type Mutation {
  saveTemplate(input: TemplateInput!): Template
  saveEndpoint(input: EndpointInput!): Endpoint
  updateEndpointTemplate(input: UpdateEndpointTemplateInput!): Endpoint
}
type User { id: String, endpoints: [Endpoint] }
input EnvInput { key: String!, value: String }
type EnvVar { key: String, value: String }
input TemplateInput {
  name: String!, imageName: String!, dockerArgs: String, containerDiskInGb: Int,
  volumeInGb: Int, volumeMountPath: String, ports: String, env: [EnvInput],
  isServerless: Boolean, containerRegistryAuthId: String, startSsh: Boolean,
  isPublic: Boolean, readme: String
}
type Template {
  id: String, name: String, imageName: String, dockerArgs: String,
  containerDiskInGb: Int, volumeInGb: Int, volumeMountPath: String, ports: String,
  env: [EnvVar], isServerless: Boolean
}
input EndpointInput {
  name: String!, templateId: String!, gpuIds: String!, networkVolumeId: String,
  locations: String, idleTimeout: Float, scalerType: String, scalerValue: Float,
  workersMin: Int, workersMax: Int, allowedCudaVersions: String, gpuCount: Int,
  flashBootType: String
}
input UpdateEndpointTemplateInput { templateId: String!, endpointId: String! }
type NetworkVolume { id: String, dataCenterId: String }
type Endpoint {
  id: String, name: String, templateId: String, gpuIds: String, networkVolumeId: String,
  locations: String, idleTimeout: Float, scalerType: String, scalerValue: Float,
  workersMin: Int, workersMax: Int, workersStandby: Int, allowedCudaVersions: String,
  gpuCount: Int, flashBootType: String, aiKey: String, type: String, userId: String,
  version: Int, env: [EnvVar], createdAt: String, networkVolume: NetworkVolume
}
"""

SERVED = {
    "mutation": {"saveTemplate", "saveEndpoint", "updateEndpointTemplate"},
    "query": {"myself"},
}
MAX_TOKENS = 5_000


def _env_list(env: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in env.items()]


def _env_dict(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(e["key"]): "" if e.get("value") is None else str(e["value"]) for e in items or []}


def _endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    s = endpoint.spec
    return {
        "id": endpoint.id,
        "name": s.name,
        "templateId": s.template_id,
        "gpuIds": s.gpu_ids,
        "networkVolumeId": s.network_volume_id,
        "locations": None,
        "idleTimeout": s.idle_timeout,
        "scalerType": s.scaler_type,
        "scalerValue": s.scaler_value,
        "workersMin": s.workers_min,
        "workersMax": s.workers_max,
        "workersStandby": s.workers_min,
        "allowedCudaVersions": None,
        "gpuCount": s.gpu_count,
        "flashBootType": "FLASHBOOT" if s.flashboot else "OFF",
        "aiKey": None,  # worker tokens are shown once, at creation
        "type": "QB",  # queue-based
        "userId": "podium",
        "version": 0,
        "env": _env_list(s.env),
        "createdAt": iso_time(endpoint.created_at),
        "networkVolume": None
        if s.network_volume_id is None
        else {"id": s.network_volume_id, "dataCenterId": None},
    }


# --- resolvers ---------------------------------------------------------------------------


def _state(info: Any) -> GatewayState:
    state: GatewayState = info.context["state"]
    return state


async def _myself(_: Any, info: Any) -> dict[str, Any]:
    endpoints = await _state(info).store.list_endpoints()
    return {"id": "podium", "endpoints": [_endpoint_view(e) for e in endpoints]}


async def _save_template(_: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    command = (input.get("dockerArgs") or "").strip() or None  # None: the image's own CMD
    template = await create_template_record(
        _state(info),
        input["name"],
        command,
        _env_dict(input.get("env")),
        input["imageName"],
        input.get("containerRegistryAuthId") or None,  # the SDK sends "" for none
    )
    return {
        **{k: input.get(k) for k in ("containerDiskInGb", "volumeInGb", "volumeMountPath")},
        "ports": input.get("ports"),
        "id": template.id,
        "name": template.name,
        "imageName": template.image_name,
        "dockerArgs": template.command,
        "env": _env_list(template.env),
        "isServerless": bool(input.get("isServerless")),
    }


async def _save_endpoint(_: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    name = input["name"]
    flashboot = input.get("flashBootType") == "FLASHBOOT" or name.endswith("-fb")
    changes: dict[str, Any] = {
        "name": name,
        "template_id": input["templateId"],
        "gpu_ids": gpu_ids_for_pools(input["gpuIds"]),
        "flashboot": flashboot,
    }
    for wire, field in (
        ("idleTimeout", "idle_timeout"),
        ("scalerType", "scaler_type"),
        ("scalerValue", "scaler_value"),
        ("workersMin", "workers_min"),
        ("workersMax", "workers_max"),
        ("gpuCount", "gpu_count"),
    ):
        if input.get(wire) is not None:
            changes[field] = input[wire]
    if input.get("networkVolumeId"):  # the SDK sends "" for none
        changes["network_volume_id"] = input["networkVolumeId"]
    endpoint, _ = await create_endpoint_record(_state(info), changes)
    view = _endpoint_view(endpoint)
    for echoed in ("locations", "allowedCudaVersions"):
        view[echoed] = input.get(echoed)
    return view


async def _update_endpoint_template(
    _: Any,
    info: Any,
    input: dict[str, Any],
) -> dict[str, Any]:
    endpoint = await update_endpoint_record(
        _state(info), input["endpointId"], {"template_id": input["templateId"]}
    )
    return _endpoint_view(endpoint)


def _schema() -> GraphQLSchema:
    schema = build_schema(SDL)
    query, mutation = schema.query_type, schema.mutation_type
    if query is None or mutation is None:  # pragma: no cover - both are in SDL
        raise RuntimeError("the GraphQL schema lost its Query or Mutation type")
    query.fields["myself"].resolve = _myself
    mutation.fields["saveTemplate"].resolve = _save_template
    mutation.fields["saveEndpoint"].resolve = _save_endpoint
    mutation.fields["updateEndpointTemplate"].resolve = _update_endpoint_template
    return schema


SCHEMA = _schema()


def _name(selection: Any) -> str:
    return selection.name.value if isinstance(selection, FieldNode) else "..."


def _refusal(query: str) -> str | None:
    """Why a document is not one of the served operations (None: it is)."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        return f"The query cannot be parsed: {exc.message}"
    except RecursionError:
        return "The query is nested too deeply."
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            return "Only operations are served (no fragments)."
        kind = definition.operation.value
        for selection in definition.selection_set.selections:
            name = _name(selection)
            if name == "myself" and isinstance(selection, FieldNode) and selection.selection_set:
                inner = [_name(s) for s in selection.selection_set.selections]
                name = next((f"myself {{ {n} }}" for n in inner if n != "endpoints"), name)
            if name not in SERVED.get(kind, set()):
                return (
                    "Podium serves only the GraphQL operations of the runpod SDK 1.12 "
                    "(saveTemplate, saveEndpoint, updateEndpointTemplate, "
                    f"myself {{ endpoints }}); "
                    f"`{kind} {{ {name} }}` is not one of them. Use the REST API, /v1."
                )
    return None


def _errors(status: int, message: str) -> JSON:
    return JSON({"errors": [{"message": message}]}, status_code=status)


@router.post(
    "/graphql",
    summary="The GraphQL operations of the runpod SDK 1.12 (admin key)",
    openapi_extra=json_body(
        {
            "type": "object",
            "required": ["query"],
            "properties": {"query": {"type": "string"}, "variables": {"type": "object"}},
        },
        "A GraphQL document: saveTemplate, saveEndpoint, updateEndpointTemplate or "
        "myself { endpoints }.",
    ),
)
async def graphql_route(request: Request) -> JSON:
    state = state_of(request)
    try:
        await authorize_client(request, Scope.ADMIN)
        raw = await read_body(request, ROUTE_BODY_BYTES)
        body = codec.loads(raw, "The request body")
    except (Unauthorized, Forbidden) as exc:
        return _errors(exc.status, exc.message)  # 401: the SDK raises AuthenticationError
    except PodiumError as exc:
        return _errors(exc.status, exc.message)
    query = body.get("query") if isinstance(body, dict) else None
    if not isinstance(query, str) or not query.strip():
        return _errors(400, 'The body must be {"query": "..."}: a GraphQL document.')
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return _errors(400, "`variables` must be an object.")
    refusal = _refusal(query)
    if refusal is not None:
        return _errors(400, refusal)
    result = await graphql(SCHEMA, query, variable_values=variables, context_value={"state": state})
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [{"message": e.message, "path": e.path} for e in result.errors]
    return JSON(out)
