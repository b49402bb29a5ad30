"""Container workers: image references and the engine's command lines. Pure: no I/O.

A worker whose endpoint (or template) names an image runs as one container per worker
slot, through the host's container engine CLI (Docker or Podman; fleet/containers.py runs
the commands this module builds). Every command is an argv list, never a shell line, and
carries no secret: fleet/containers.py gives the container's variables in a 0600 env file
(`--env-file`, removed once the container has started) and registry credentials in a 0600
auth file for the pull and nothing else.

What a container gets, as a process worker does: the RUNPOD_* variables (with the
gateway's URL: the container shares the host's network by default), its GPUs
(`--gpus device=...` for Docker, CDI `--device nvidia.com/gpu=...` for Podman, and
CUDA_VISIBLE_DEVICES), the endpoint's env, the start command override, and a network
volume at /runpod-volume when the endpoint names one. It runs with `--init` (signals reach
the worker, not a PID 1 that ignores them), `no-new-privileges`, never `--privileged`, and
no host path mounted but its volume. Labels name its installation, endpoint, worker and
slot, so that a controller that starts after a crash finds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ENGINES",
    "LABEL_ENDPOINT",
    "LABEL_OWNER",
    "LABEL_SLOT",
    "LABEL_WORKER",
    "VOLUME_MOUNT",
    "ContainerSpec",
    "EngineKind",
    "image_error",
    "kill_argv",
    "list_argv",
    "pull_argv",
    "remove_argv",
    "run_argv",
]

EngineKind = Literal["docker", "podman"]
ENGINES: tuple[EngineKind, ...] = ("podman", "docker")  # the order they are looked for
VOLUME_MOUNT = "/runpod-volume"  # where RunPod workers find their network volume
LABEL_OWNER = "io.podium.owner"  # the installation (one per store) that started it
LABEL_ENDPOINT = "io.podium.endpoint"
LABEL_WORKER = "io.podium.worker"
LABEL_SLOT = "io.podium.slot"

# The OCI / Docker distribution reference grammar (distribution/reference/regexp.go):
#   [domain[:port]/]path-component[/path-component...][:tag][@digest]
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# A first component is a registry host only when it looks like one (Docker's rule): it has
# a dot or a port, or is `localhost` or an IPv6 address; else it is part of the path.
_DOMAIN = (
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})+(?::[0-9]+)?"
    rf"|{_DOMAIN_COMPONENT}:[0-9]+|localhost|\[[a-fA-F0-9:]+\](?::[0-9]+)?)"
)
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
_NAME_MAX = 255


def image_error(ref: str) -> str | None:
    """Why `ref` is not an image reference (one sentence, naming it), or None."""
    match = _REFERENCE.fullmatch(ref)
    if match is None:
        return (
            f"{ref[:200]!r} is not an image reference: use [registry/]repository[:tag]"
            "[@digest], e.g. docker.io/runpod/worker-comfyui:5.1.0 (lowercase repository)"
        )
    if len(match["name"]) > _NAME_MAX:
        return f"the image name of {ref[:80]!r}… is longer than {_NAME_MAX} characters"
    return None


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What a container worker runs (from its endpoint and template)."""

    image: str
    command: tuple[str, ...] = ()  # the start command override; (): the image's own CMD
    registry_id: str | None = None  # the credentials to pull it with (v2 /registries)
    volume_id: str | None = None  # the network volume mounted at VOLUME_MOUNT


def run_argv(
    engine: str,
    kind: EngineKind,
    spec: ContainerSpec,
    *,
    name: str,
    env_file: str | None = None,
    gpus: Sequence[int] = (),
    volume_dir: str | None = None,
    labels: Mapping[str, str] | None = None,
    network: str = "host",
) -> list[str]:
    """`ENGINE run ...` for one worker: attached (its output is the worker's log), removed
    when it exits, its variables in `env_file` (never on the command line)."""
    argv = [
        engine,
        "run",
        "--rm",
        "--init",
        "--name",
        name,
        "--pull",
        "never",  # fleet/containers.py pulls first, once per host, with the credentials
        "--network",
        network,
        "--security-opt",
        "no-new-privileges",
    ]
    for key, value in sorted((labels or {}).items()):
        argv += ["--label", f"{key}={value}"]
    if gpus:
        ids = ",".join(str(g) for g in gpus)
        if kind == "docker":
            argv += ["--gpus", f"device={ids}"]
        else:  # Podman: the NVIDIA Container Toolkit's CDI devices
            for g in gpus:
                argv += ["--device", f"nvidia.com/gpu={g}"]
    if volume_dir is not None:
        argv += ["--volume", f"{volume_dir}:{VOLUME_MOUNT}"]
    if env_file is not None:
        argv += ["--env-file", env_file]
    return [*argv, spec.image, *spec.command]


def pull_argv(engine: str, kind: EngineKind, image: str, auth_path: str | None) -> list[str]:
    """Pull an image; with credentials in `auth_path` (Podman: an auth.json file; Docker:
    a config directory holding config.json)."""
    if auth_path is None:
        return [engine, "pull", image]
    if kind == "docker":
        return [engine, "--config", auth_path, "pull", image]
    return [engine, "pull", "--authfile", auth_path, image]


def kill_argv(engine: str, name: str, signal: str) -> list[str]:
    return [engine, "kill", "--signal", signal, name]


def remove_argv(engine: str, names: Sequence[str]) -> list[str]:
    return [engine, "rm", "--force", *names]


def list_argv(engine: str, owner: str) -> list[str]:
    """The containers one installation started (running or not), one name a line."""
    return [
        engine,
        "ps",
        "--all",
        "--filter",
        f"label={LABEL_OWNER}={owner}",
        "--format",
        "{{.Names}}",
    ]
