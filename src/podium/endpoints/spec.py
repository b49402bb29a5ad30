"""Endpoint records: ids like RunPod's, settings and their validation. Pure: no I/O.

Settings are named on the wire as RunPod's REST API names them (`workersMin`,
`idleTimeout`, `scalerType`, ...); `WIRE_NAMES` maps each wire name to its field here, in
one place, for the admin API (create and PATCH), `public()` and the CLI.

An endpoint without `templateId` or `imageName` has no managed workers: its workers are
started by someone else (`podium worker`, a RunPod SDK program on another machine). With a
template (`sd15`, `custom` or a created template's id) or an image the fleet
(podium.fleet) starts and stops its workers — processes or containers — on this machine or
on a Ray cluster.
"""

from __future__ import annotations

import dataclasses
import secrets
import shlex
import string
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from podium.clock import iso_time
from podium.endpoints.containers import image_error
from podium.endpoints.gpu_ids import gpu_type_ids, parse_gpu_ids
from podium.endpoints.loadbalancer import ENDPOINT_TYPES, LOAD_BALANCER, QUEUE
from podium.endpoints.loadbalancer import env_errors as lb_env_errors
from podium.endpoints.templates import BUILTIN_TEMPLATES, TEMPLATE_CUSTOM, TEMPLATE_SD15
from podium.endpoints.worker_env import env_errors, nul_errors
from podium.errors import BadRequest
from podium.jobs import DEFAULT_LIMITS
from podium.keys import hash_secret, new_worker_token

__all__ = [
    "MAX_GPU_COUNT",
    "MAX_WORKERS",
    "RELEASE_FIELDS",
    "SCALER_TYPES",
    "WIRE_NAMES",
    "Endpoint",
    "EndpointSpec",
    "new_endpoint_id",
]

_ID_ALPHABET = string.ascii_lowercase + string.digits

SCALER_TYPES = ("QUEUE_DELAY", "REQUEST_COUNT")
MAX_GPU_COUNT = 16
# Workers of one endpoint (workersMin, workersMax). RunPod caps them by an account quota
# (a few dozen); Podium's fleet keeps a slot per worker and starts a process (or a Ray
# actor) per slot, so a bound keeps one endpoint's settings from swamping the machine.
MAX_WORKERS = 100
MAX_IDLE_TIMEOUT_S = 3600  # RunPod v2's `idleTimeout` maximum
# scalerValue: QUEUE_DELAY's seconds a job may wait, REQUEST_COUNT's jobs per worker
_SCALER_MAX = {"QUEUE_DELAY": 3600.0, "REQUEST_COUNT": 10_000.0}

# wire name -> EndpointSpec field
WIRE_NAMES: dict[str, str] = {
    "name": "name",
    "templateId": "template_id",
    "workersMin": "workers_min",
    "workersMax": "workers_max",
    "idleTimeout": "idle_timeout",
    "scalerType": "scaler_type",
    "scalerValue": "scaler_value",
    "gpuIds": "gpu_ids",
    "gpuCount": "gpu_count",
    "flashboot": "flashboot",
    "env": "env",
    "model": "model",
    "command": "command",
    "executionTimeoutMs": "execution_timeout_ms",
    "retryLimit": "retry_limit",
    "retentionRunMs": "retention_run_ms",
    "retentionSyncMs": "retention_sync_ms",
    "inputSchema": "input_schema",
    "imageName": "image_name",
    "networkVolumeId": "network_volume_id",
    "containerRegistryAuthId": "registry_id",
    "type": "type",
}


def new_endpoint_id() -> str:
    """A 14-character lowercase id, the shape RunPod uses (e.g. `9ylt4s5v5gm1hd`): never a
    REST v2 resource name under /v2/ (`serverless`, `templates` ...: those are shorter, and
    all have fewer than 14 characters)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


@dataclass(slots=True)
class EndpointSpec:
    """What a user may set on an endpoint (names as RunPod's REST API spells them)."""

    name: str
    execution_timeout_ms: int = DEFAULT_LIMITS.execution_timeout_default_ms
    retry_limit: int = DEFAULT_LIMITS.retry_limit_default
    retention_run_ms: int | None = None  # None: the gateway's default
    retention_sync_ms: int | None = None
    input_schema: dict[str, Any] | None = None
    # Workers (the fleet). None: workers are started elsewhere, not managed here.
    template_id: str | None = None
    workers_min: int = 0
    workers_max: int = 3
    idle_timeout: float = 5.0  # seconds an idle worker is kept
    scaler_type: str = "QUEUE_DELAY"
    scaler_value: float = 4.0  # QUEUE_DELAY: seconds; REQUEST_COUNT: jobs per worker
    gpu_ids: str = ""  # see endpoints.gpu_ids: "", "0,1", "24GB" or "A100,H100"
    gpu_count: int = 1  # GPUs per worker; 0: a CPU worker
    flashboot: bool = False  # keep loaded workers warm longer than idleTimeout
    env: dict[str, str] = field(default_factory=dict)
    model: str | None = None  # sd15: the model (None: "auto")
    command: str | None = None  # custom: the worker command line; with an image: its override
    image_name: str | None = None  # a container image: each worker is a container of it
    network_volume_id: str | None = None  # mounted at /runpod-volume (endpoints/volumes.py)
    registry_id: str | None = None  # the credentials its image is pulled with
    # QUEUE (jobs: /run, /runsync) or LOAD_BALANCER (requests proxied to its workers'
    # HTTP servers: endpoints/loadbalancer.py)
    type: str = QUEUE

    @property
    def load_balancer(self) -> bool:
        return self.type == LOAD_BALANCER

    @property
    def managed(self) -> bool:
        return self.template_id is not None or self.image_name is not None

    def updated(self, changes: Mapping[str, Any]) -> EndpointSpec:
        """A copy with `changes` (field names) applied; validate() it before use. Made a
        load balancer without a scaler type, it scales by REQUEST_COUNT (its only one)."""
        changes = dict(changes)
        if (
            changes.get("type") == LOAD_BALANCER
            and "scaler_type" not in changes
            and self.scaler_type != "REQUEST_COUNT"
        ):
            changes["scaler_type"] = "REQUEST_COUNT"
        return dataclasses.replace(self, **changes)

    def validate(self, templates: Collection[str] | None = None) -> None:
        """Raise BadRequest naming every problem at once. `templates`: the ids of
        created templates (None: do not check that a non-built-in id exists)."""
        errors = self._basic_errors() + self._worker_errors(templates)
        if errors:
            raise BadRequest("Invalid endpoint: " + "; ".join(errors) + ".")

    def _basic_errors(self) -> list[str]:
        errors: list[str] = []
        if not self.name or len(self.name) > 191:
            errors.append("`name` must be 1 to 191 characters")
        lim = DEFAULT_LIMITS
        if (
            not lim.execution_timeout_min_ms
            <= self.execution_timeout_ms
            <= (lim.execution_timeout_max_ms)
        ):
            errors.append(
                f"`executionTimeoutMs` must be between {lim.execution_timeout_min_ms} and "
                f"{lim.execution_timeout_max_ms}, got {self.execution_timeout_ms}"
            )
        if not 0 <= self.retry_limit <= 100:
            errors.append(f"`retryLimit` must be between 0 and 100, got {self.retry_limit}")
        for key in ("retention_run_ms", "retention_sync_ms"):
            value = getattr(self, key)
            if value is not None and not 1_000 <= value <= 7 * 86_400_000:
                errors.append(f"`{key}` must be between 1000 ms and 7 days, got {value}")
        return errors

    def _type_errors(self) -> list[str]:
        if self.type not in ENDPOINT_TYPES:
            return [f"`type` must be QUEUE or LOAD_BALANCER, got {str(self.type)[:40]!r}"]
        if not self.load_balancer:
            return []
        errors = lb_env_errors(self.env)
        if not self.managed:
            errors.append(
                "a LOAD_BALANCER endpoint needs workers Podium runs: give it `templateId` "
                "(custom or a created template) or `imageName`"
            )
        if self.template_id == TEMPLATE_SD15:
            errors.append(
                "a LOAD_BALANCER endpoint runs an HTTP server (templateId custom, a created "
                "template or an image), not the sd15 queue worker"
            )
        if self.scaler_type != "REQUEST_COUNT":
            errors.append(
                "a LOAD_BALANCER endpoint scales by REQUEST_COUNT (requests in flight per "
                f"worker), not {self.scaler_type!r}"
            )
        return errors

    def _worker_errors(self, templates: Collection[str] | None) -> list[str]:  # noqa: C901
        errors: list[str] = []
        tid = self.template_id
        if (
            tid is not None
            and tid not in BUILTIN_TEMPLATES
            and (templates is not None and tid not in templates)
        ):
            errors.append(
                f"unknown `templateId` {tid!r}: use sd15, custom or the id of a template "
                "from GET /v1/templates"
            )
        errors += nul_errors({"command": self.command, "model": self.model})
        errors += self._type_errors()
        if self.image_name is not None:
            problem = image_error(self.image_name)
            if problem is not None:
                errors.append(f"`imageName`: {problem}")
            if tid is not None and tid != TEMPLATE_CUSTOM:
                errors.append(
                    f"`imageName` is for endpoints that run their own image (templateId "
                    f"custom or none), not with templateId {tid!r}: put the image in the "
                    "template"
                )
        if tid == TEMPLATE_CUSTOM and not (self.command or "").strip() and not self.image_name:
            errors.append("`command` is required with templateId custom (e.g. 'python handler.py')")
        if self.command:
            try:
                shlex.split(self.command)
            except ValueError as exc:
                errors.append(f"`command` cannot be split into words: {exc}")
        if self.command is not None and tid not in (TEMPLATE_CUSTOM, None):
            errors.append(f"`command` is only for templateId custom, not {tid!r}")
        if self.model is not None and tid not in (TEMPLATE_SD15, None):
            errors.append(f"`model` is only for templateId sd15, not {tid!r}")
        for wire, value in (("workersMin", self.workers_min), ("workersMax", self.workers_max)):
            if value < 0:
                errors.append(f"`{wire}` must be 0 or more, got {value}")
            elif value > MAX_WORKERS:
                errors.append(f"`{wire}` must be at most {MAX_WORKERS}, got {value}")
        if self.workers_min > self.workers_max:
            errors.append(
                f"`workersMin` ({self.workers_min}) must not exceed `workersMax` "
                f"({self.workers_max})"
            )
        if not self.idle_timeout >= 0:  # NaN too
            errors.append(f"`idleTimeout` must be 0 or more seconds, got {self.idle_timeout:g}")
        elif self.idle_timeout > MAX_IDLE_TIMEOUT_S:
            errors.append(
                f"`idleTimeout` must be at most {MAX_IDLE_TIMEOUT_S} seconds, "
                f"got {self.idle_timeout:g}"
            )
        if self.scaler_type not in SCALER_TYPES:
            errors.append(
                f"`scalerType` must be QUEUE_DELAY or REQUEST_COUNT, got {self.scaler_type!r}"
            )
        elif self.scaler_type == "REQUEST_COUNT" and not self.scaler_value >= 1:
            errors.append(
                f"`scalerValue` must be at least 1 (jobs per worker) with REQUEST_COUNT, "
                f"got {self.scaler_value:g}"
            )
        elif self.scaler_type == "QUEUE_DELAY" and not self.scaler_value >= 0:
            errors.append(
                f"`scalerValue` must be 0 or more seconds with QUEUE_DELAY, "
                f"got {self.scaler_value:g}"
            )
        elif self.scaler_value > (limit := _SCALER_MAX[self.scaler_type]):
            errors.append(
                f"`scalerValue` must be at most {limit:g} with {self.scaler_type}, "
                f"got {self.scaler_value:g}"
            )
        try:
            request = parse_gpu_ids(self.gpu_ids)
        except ValueError as exc:
            errors.append(str(exc))
        else:
            if request.indices is not None and len(request.indices) < self.gpu_count:
                errors.append(
                    f"`gpuCount` {self.gpu_count} needs at least that many GPUs in `gpuIds` "
                    f"({self.gpu_ids!r})"
                )
        if not 0 <= self.gpu_count <= MAX_GPU_COUNT:
            errors.append(
                f"`gpuCount` must be between 0 (CPU workers) and {MAX_GPU_COUNT}, "
                f"got {self.gpu_count}"
            )
        return errors + env_errors(self.env)


# The settings whose change is a new release (endpointVersion + 1): what a worker runs.
# The fleet replaces the workers of an older version (fleet/supervisor.py).
RELEASE_FIELDS = (
    "template_id",
    "command",
    "model",
    "env",
    "image_name",
    "registry_id",
    "network_volume_id",
    "gpu_ids",
    "gpu_count",
    "type",
)
MAX_RELEASES = 20  # an endpoint keeps its latest releases
_WIRE_OF = {field: wire for wire, field in WIRE_NAMES.items()}


@dataclass(slots=True)
class Endpoint:
    id: str
    spec: EndpointSpec
    worker_token_hash: str
    webhook_secret: str
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    # RunPod REST v2 settings that mean nothing on one's own hardware (data centers, CUDA
    # versions, disk, ports ...): accepted, kept and shown as given (endpoints/v2.py)
    v2_fields: dict[str, Any] = field(default_factory=dict)
    version: int = 1  # endpointVersion: + 1 with each release
    releases: list[dict[str, Any]] = field(default_factory=list)  # newest first

    def release(self, before: EndpointSpec, now: float) -> bool:
        """Record a new release when what the workers run changed (RELEASE_FIELDS)."""
        diff = [
            {"field": _WIRE_OF.get(name, name), "old": getattr(before, name), "new": new}
            for name in RELEASE_FIELDS
            if (new := getattr(self.spec, name)) != getattr(before, name)
        ]
        if not diff:
            return False
        self.add_release(diff, now)
        return True

    def add_release(self, diff: list[dict[str, Any]], now: float) -> None:
        """endpointVersion + 1, with what changed (`{field, old, new}` entries)."""
        self.version += 1
        entry = {
            "id": f"rel_{secrets.token_hex(6)}",
            "version": self.version,
            "createdAt": now,
            "diff": diff,
        }
        self.releases = [entry, *self.releases][:MAX_RELEASES]

    @classmethod
    def create(cls, spec: EndpointSpec, now: float) -> tuple[Endpoint, str]:
        """A new endpoint and its worker token (to show once; only its hash is kept)."""
        token = new_worker_token()
        endpoint = cls(
            id=new_endpoint_id(),
            spec=spec,
            worker_token_hash=hash_secret(token),
            webhook_secret=secrets.token_hex(32),
            created_at=now,
        )
        endpoint.releases = [
            {"id": f"rel_{endpoint.id}", "version": 1, "createdAt": now, "diff": []}
        ]
        return endpoint, token

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Endpoint:
        """Read a stored doc; docs written before a field existed get its default, and
        fields this version does not know are ignored."""
        doc = dict(doc)
        known = {f.name for f in dataclasses.fields(EndpointSpec)}
        doc["spec"] = EndpointSpec(**{k: v for k, v in doc["spec"].items() if k in known})
        mine = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in mine})

    def public(self) -> dict[str, Any]:
        s = self.spec
        body: dict[str, Any] = {"id": self.id}
        for wire, name in WIRE_NAMES.items():
            if name != "input_schema":
                body[wire] = getattr(s, name)
        body["gpuTypeIds"] = gpu_type_ids(s.gpu_ids)  # RunPod's REST name for GPU types
        body["createdAt"] = iso_time(self.created_at)  # ISO 8601, as RunPod's REST API
        return {**body, **self.extra}
