"""RunPod's REST API v2 shapes of endpoints, templates, workers and releases
(`../shared/specs/runpod-rest-v2.json`), mapped onto Podium's records. Pure.

    v2 field                         Podium
    type                             EndpointSpec.type
    templateId / image / args        template_id / image_name / command
    registry                         registry_id (GET /v2/registries)
    networkVolumes                   network_volume_id (one at most)
    gpu.pools / gpu.count            gpu_ids (memory classes -> a minimum memory, GPU type
                                     names -> matched by name: gpu_ids_for_v2_pools) / gpu_count
    cpu                              gpu_count 0 (a CPU worker) when no `gpu` is given
    workers.min / max / idleTimeout  workers_min / workers_max / idle_timeout
    scaling                          scaler_type, scaler_value (queueDelay / requestCount)
    timeout (ms)                     execution_timeout_ms
    flashboot                        flashboot (any mode but OFF)
    dataCenterIds, disk, ports, gpu.excludedTypes / allowedCudaVersions / minCudaVersion,
    cpu ids                          kept as given and shown (Endpoint.v2_fields): they mean
                                     nothing on one's own hardware
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.clock import iso_time
from podium.endpoints.gpu_ids import GPU_POOLS, gpu_ids_for_v2_pools
from podium.endpoints.loadbalancer import lb_url
from podium.endpoints.spec import Endpoint
from podium.endpoints.templates import Template

__all__ = [
    "RESERVED_V2_NAMES",
    "endpoint_changes",
    "endpoint_view",
    "release_view",
    "rollout",
    "template_view",
    "worker_status",
]

# The REST v2 resources under /v2/: no endpoint id may be one of them (ids are 14
# characters: endpoints.spec.new_endpoint_id; this is checked there too).
RESERVED_V2_NAMES = frozenset({"serverless", "templates", "network-volumes", "registries"})

# Kept as given (Endpoint.v2_fields) and shown on every answer.
_KEPT = ("dataCenterIds", "disk", "ports", "cpu")
_GPU_KEPT = ("excludedTypes", "allowedCudaVersions", "minCudaVersion")


def endpoint_changes(
    body: Mapping[str, Any], kept: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A v2 create or update body (already checked against its schema) -> (EndpointSpec
    field changes, the new v2_fields). Only what the body names changes."""
    changes: dict[str, Any] = {}
    fields = dict(kept or {})
    simple = {
        "name": "name",
        "type": "type",
        "templateId": "template_id",
        "image": "image_name",
        "args": "command",
        "registry": "registry_id",
        "env": "env",
        "timeout": "execution_timeout_ms",
    }
    for wire, name in simple.items():
        if wire in body:
            changes[name] = body[wire]
    if "args" in body and not (body["args"] or "").strip():
        changes["command"] = None  # "": the image's own CMD
    if body.get("image") and "templateId" not in body:
        changes.setdefault("template_id", None)
    if "networkVolumes" in body:
        ids = list(body["networkVolumes"] or [])
        if len(ids) > 1:
            raise ValueError(
                "`networkVolumes`: Podium mounts one network volume per endpoint "
                f"(at /runpod-volume), got {len(ids)}"
            )
        changes["network_volume_id"] = ids[0] if ids else None
    if body.get("flashboot") is not None:
        changes["flashboot"] = body["flashboot"] != "OFF"
        fields["flashboot"] = body["flashboot"]
    _scaling_changes(body, changes)
    _gpu_changes(body, changes, fields)
    for key in _KEPT:
        if key in body:
            fields[key] = body[key]
    return changes, fields


def _scaling_changes(body: Mapping[str, Any], changes: dict[str, Any]) -> None:
    workers = body.get("workers") or {}
    for wire, name in (("min", "workers_min"), ("max", "workers_max")):
        if wire in workers:
            changes[name] = workers[wire]
    if "idleTimeout" in workers:
        changes["idle_timeout"] = float(workers["idleTimeout"])
    scaling = body.get("scaling")
    if scaling is not None:
        changes["scaler_type"] = scaling["type"]
        value = scaling.get("queueDelay", scaling.get("requestCount"))
        changes["scaler_value"] = float(value)


def _gpu_changes(body: Mapping[str, Any], changes: dict[str, Any], fields: dict[str, Any]) -> None:
    gpu = body.get("gpu")
    if gpu is not None:
        if "pools" in gpu:
            changes["gpu_ids"] = gpu_ids_for_v2_pools(list(gpu["pools"]))
            fields["gpuPools"] = list(gpu["pools"])
        if "count" in gpu:
            changes["gpu_count"] = gpu["count"]
        for key in _GPU_KEPT:
            if key in gpu:
                fields[f"gpu.{key}"] = gpu[key]
    elif body.get("cpu"):
        changes["gpu_count"] = 0
        fields.pop("gpuPools", None)


def _pools(endpoint: Endpoint) -> list[str]:
    kept = endpoint.v2_fields.get("gpuPools")
    if kept:
        return list(kept)
    ids = endpoint.spec.gpu_ids
    if ids.upper().endswith("GB") and ids[:-2].isdigit():  # a memory: its pools
        least = int(ids[:-2])
        return [p for p, gb in GPU_POOLS.items() if gb >= least] or ["ANY"]
    return [ids] if ids else ["ANY"]


def endpoint_view(endpoint: Endpoint, base_url: str, image: str | None = None) -> dict[str, Any]:
    """An endpoint as v2's `Endpoint` schema shows it. `image`: its template's image when
    the endpoint names a template with one."""
    s, kept = endpoint.spec, endpoint.v2_fields
    base = base_url.rstrip("/")
    if s.load_balancer:
        url = lb_url(base, endpoint.id)
        urls: dict[str, str] = {"base": url, "health": f"{url}/ping"}
    else:
        v2 = f"{base}/v2/{endpoint.id}"
        urls = {
            "run": f"{v2}/run",
            "runSync": f"{v2}/runsync",
            "status": f"{v2}/status",
            "stream": f"{v2}/stream",
            "cancel": f"{v2}/cancel",
            "retry": f"{v2}/retry",
            "purgeQueue": f"{v2}/purge-queue",
            "health": f"{v2}/health",
        }
    if s.scaler_type == "REQUEST_COUNT":
        scaling = {"type": "REQUEST_COUNT", "requestCount": max(1, round(s.scaler_value))}
    else:
        scaling = {"type": "QUEUE_DELAY", "queueDelay": max(0.5, s.scaler_value)}
    body: dict[str, Any] = {
        "id": endpoint.id,
        "name": s.name,
        "type": s.type,
        "templateId": s.template_id,
        "image": s.image_name or image or "",
        "args": s.command or "",
        "env": dict(s.env),
        "registry": s.registry_id,
        "ports": list(kept.get("ports") or []),
        "workers": {
            "min": s.workers_min,
            "max": s.workers_max,
            "idleTimeout": min(3600, max(1, round(s.idle_timeout))),
        },
        "scaling": scaling,
        "dataCenterIds": list(kept.get("dataCenterIds") or []),
        "networkVolumes": [s.network_volume_id] if s.network_volume_id else [],
        "timeout": s.execution_timeout_ms,
        "flashboot": kept.get("flashboot") or ("FLASHBOOT" if s.flashboot else "OFF"),
        "createdAt": iso_time(endpoint.created_at),
        "requestUrls": urls,
        "version": endpoint.version,
    }
    if "disk" in kept:
        body["disk"] = kept["disk"]
    if s.gpu_count > 0:
        body["gpu"] = {
            "pools": _pools(endpoint),
            "count": s.gpu_count,
            "excludedTypes": list(kept.get("gpu.excludedTypes") or []),
            "allowedCudaVersions": list(kept.get("gpu.allowedCudaVersions") or []),
            "minCudaVersion": kept.get("gpu.minCudaVersion") or None,
        }
    else:
        body["gpu"] = None
        cpus = kept.get("cpu") or [{"id": "cpu", "vcpuCount": 2}]
        body["cpu"] = [{**c, "memory": max(1, 2 * int(c.get("vcpuCount", 2)))} for c in cpus]
    return body


_TEMPLATE_KEPT_DEFAULTS: dict[str, Any] = {
    "disk": 20,
    "ports": [],
    "mounts": {},
    "serverless": True,
    "public": False,
    "category": "NVIDIA",
    "startSsh": False,
    "startJupyter": False,
    "allowedCudaVersions": [],
}


def template_view(template: Template) -> dict[str, Any]:
    """A created template as v2's `Template` schema shows it."""
    kept = {**_TEMPLATE_KEPT_DEFAULTS, **template.v2_fields}
    return {
        "id": template.id,
        "name": template.name,
        "image": template.image_name or "",
        "args": template.command or "",
        "env": dict(template.env),
        "registry": template.registry_id,
        **{k: kept[k] for k in _TEMPLATE_KEPT_DEFAULTS},
    }


def worker_status(status: str) -> str:
    """RunPod's worker status words, upper case in v2."""
    return status.upper()


def rollout(versions: list[int | None], latest: int) -> dict[str, Any]:
    """v2's RolloutSummary for the live workers' versions."""
    total = len(versions)
    on_latest = sum(1 for v in versions if v == latest)
    return {
        "inProgress": on_latest < total,
        "workersOnLatest": on_latest,
        "workersTotal": total,
        "percentOnLatest": 100 if total == 0 else (100 * on_latest) // total,
    }


def release_view(entry: Mapping[str, Any], workers: int) -> dict[str, Any]:
    return {
        "id": str(entry["id"]),
        "version": int(entry["version"]),
        "source": "MANUAL",
        "createdAt": iso_time(float(entry["createdAt"])),
        "workerCount": workers,
        "diff": list(entry.get("diff") or []),
        "buildId": None,
        "createdByUserId": None,
    }
