"""Templates: what a worker process runs. Pure: records and the command line, no I/O.

Built-in:
    sd15     Podium's Stable Diffusion worker: `python -m podium.worker --template sd15
             --model M` (the endpoint's `model`, default `auto`)
    custom   the endpoint's own `command`, e.g. `python handler.py` of an unmodified
             RunPod SDK worker, or `python -m podium.worker my_module:handler`

Created templates (`POST /v1/templates {name, command, env}`) name a command and env once
for several endpoints, or an image (`imageName`, RunPod's): its workers are then containers
of it (endpoints/containers.py), `command` the image's start command override (its own CMD
when there is none), pulled with the credentials of `containerRegistryAuthId`. Commands
are split like a shell would (shlex) but run without a shell; use `sh -c '...'` for pipes
or `&&`. Process workers run in the gateway's working directory.

An endpoint may also name an image itself (`imageName`, with templateId `custom` or none).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shlex
import string
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from podium.clock import iso_time
from podium.endpoints.containers import ContainerSpec, image_error
from podium.endpoints.worker_env import env_errors, nul_errors
from podium.errors import BadRequest

if TYPE_CHECKING:
    from podium.endpoints.spec import EndpointSpec

__all__ = [
    "BUILTINS",
    "BUILTIN_TEMPLATES",
    "TEMPLATE_CUSTOM",
    "TEMPLATE_SD15",
    "Launch",
    "Template",
    "launch_for",
    "new_template_id",
]

TEMPLATE_SD15 = "sd15"
TEMPLATE_CUSTOM = "custom"
BUILTIN_TEMPLATES = (TEMPLATE_SD15, TEMPLATE_CUSTOM)
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_template_id() -> str:
    return "tpl_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    name: str
    command: str | None = None  # None for the built-ins
    env: dict[str, str] = field(default_factory=dict)
    builtin: bool = False
    created_at: float = 0.0
    image_name: str | None = None  # a container image: its workers are containers of it
    registry_id: str | None = None  # the credentials to pull the image with
    # RunPod REST v2 fields kept as given (disk, ports, mounts, category ...: endpoints/v2.py)
    v2_fields: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        errors: list[str] = []
        if not self.name or len(self.name) > 191:
            errors.append("`name` must be 1 to 191 characters")
        if self.image_name is not None and (problem := image_error(self.image_name)):
            errors.append(f"`imageName`: {problem}")
        if not (self.command or "").strip():
            if self.image_name is None:
                errors.append("`command` is required (e.g. 'python handler.py'), or an `imageName`")
        else:
            try:
                shlex.split(self.command or "")
            except ValueError as exc:
                errors.append(f"`command` cannot be split into words: {exc}")
        errors += nul_errors({"command": self.command, "imageName": self.image_name})
        if self.registry_id is not None and self.image_name is None:
            errors.append("`containerRegistryAuthId` is for a template with an `imageName`")
        errors += env_errors(self.env)
        if errors:
            raise BadRequest("Invalid template: " + "; ".join(errors) + ".")

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "command": self.command,
            "env": dict(self.env),
            "builtin": self.builtin,
            "createdAt": iso_time(self.created_at) if self.created_at else None,
            # RunPod's REST names (the command split like a shell would split it)
            "imageName": self.image_name,
            "dockerStartCmd": shlex.split(self.command or ""),
            "containerRegistryAuthId": self.registry_id,
            "isServerless": True,
        }

    def to_doc(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "name": self.name,
                "command": self.command,
                "env": self.env,
                "created_at": self.created_at,
                "image_name": self.image_name,
                "registry_id": self.registry_id,
                "v2_fields": self.v2_fields,
            }
        )

    @classmethod
    def from_doc(cls, doc: str) -> Template:
        d = json.loads(doc)
        return cls(
            d["id"],
            d["name"],
            d.get("command"),
            dict(d.get("env") or {}),
            created_at=d.get("created_at", 0.0),
            image_name=d.get("image_name"),
            registry_id=d.get("registry_id"),
            v2_fields=dict(d.get("v2_fields") or {}),
        )


BUILTINS: dict[str, Template] = {
    TEMPLATE_SD15: Template(
        TEMPLATE_SD15, "Stable Diffusion v1.5 (Podium's SD worker)", builtin=True
    ),
    TEMPLATE_CUSTOM: Template(TEMPLATE_CUSTOM, "Custom command (any worker program)", builtin=True),
}


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one of an endpoint's workers (before the per-worker RUNPOD_* vars):
    a process (`argv`) or, with `container`, a container of an image."""

    argv: tuple[str, ...]
    env: dict[str, str]
    container: ContainerSpec | None = None

    @property
    def key(self) -> str:
        """Changes when what the workers run changes: old workers are then replaced."""
        raw = json.dumps([self.argv, sorted(self.env.items()), _container_key(self.container)])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _container_key(spec: ContainerSpec | None) -> list[object] | None:
    if spec is None:
        return None
    return [spec.image, list(spec.command), spec.registry_id, spec.volume_id]


def launch_for(
    spec: EndpointSpec, template: Template | None, python: str = sys.executable
) -> Launch:
    """The command line and env for an endpoint's workers. `template`: the created
    template named by spec.template_id (None for the built-ins)."""
    tid = spec.template_id
    image = spec.image_name or (template.image_name if template is not None else None)
    if image is not None:
        own = spec.image_name is not None
        command = spec.command if own else (template.command if template else None)
        container = ContainerSpec(
            image=image,
            command=tuple(shlex.split(command or "")),
            registry_id=spec.registry_id if own else (template.registry_id if template else None),
            volume_id=spec.network_volume_id,
        )
        env = dict(spec.env) if own or template is None else {**template.env, **spec.env}
        return Launch((), env, container)
    if tid == TEMPLATE_SD15:
        argv = [
            python,
            "-m",
            "podium.worker",
            "--template",
            TEMPLATE_SD15,
            "--model",
            spec.model or "auto",
        ]
        return Launch(tuple(argv), dict(spec.env))
    if tid == TEMPLATE_CUSTOM:
        return Launch(tuple(shlex.split(spec.command or "")), dict(spec.env))
    if template is None:
        raise BadRequest(f"Template {tid!r} does not exist; see GET /v1/templates.")
    return Launch(tuple(shlex.split(template.command or "")), {**template.env, **spec.env})
