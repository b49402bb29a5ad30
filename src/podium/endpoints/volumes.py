"""Network volumes and container registries: records of the catalog. Pure: no I/O.

A network volume (RunPod's `/v2/network-volumes`) is a directory under the volume root
(`PODIUM_VOLUME_ROOT`, default DATA_DIR/volumes; an NFS mount every host shares, for a
fleet across hosts), named by the volume's id so that no name can lead out of the root.
It is mounted at /runpod-volume in every container of an endpoint that names it; a
process worker gets its path in PODIUM_VOLUME_PATH. `size` and `dataCenter` are RunPod's:
kept and shown; Podium enforces no quota (the filesystem does).

A registry (RunPod's `/v2/registries`) is a name and a username; its password is
write-only: kept only in a 0600 file of the data dir (fleet/containers.py reads it to
pull), never in the store, never shown or logged.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from podium.endpoints.worker_env import nul_errors
from podium.errors import BadRequest

__all__ = [
    "VOLUME_PATH_VAR",
    "VOLUME_SIZE_GB",
    "VOLUME_TYPES",
    "NetworkVolume",
    "Registry",
    "new_registry_id",
    "new_volume_id",
    "volume_dir",
]

VOLUME_TYPES = ("STANDARD", "HIGH_PERFORMANCE")
VOLUME_SIZE_GB = (10, 4096)  # RunPod's bounds
VOLUME_PATH_VAR = "PODIUM_VOLUME_PATH"  # a process worker's volume (containers: the mount)
_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 10
_NAME_MAX = 191


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def new_volume_id() -> str:
    return _new_id("vol_")


def new_registry_id() -> str:
    return _new_id("reg_")


def _is_id(value: str, prefix: str) -> bool:
    rest = value.removeprefix(prefix)
    return value.startswith(prefix) and len(rest) == _ID_LENGTH and set(rest) <= set(_ID_ALPHABET)


def volume_dir(root: str, volume_id: str) -> str:
    """The volume's directory: `root/<id>`, for an id this module made (never a path that
    leads out of the root: BadRequest otherwise)."""
    if not _is_id(volume_id, "vol_"):
        raise BadRequest(f"{volume_id[:80]!r} is not a network volume id.")
    return str(PurePosixPath(root) / volume_id)


def _name_errors(name: Any) -> list[str]:
    if not isinstance(name, str) or not 1 <= len(name) <= _NAME_MAX:
        return [f"`name` must be 1 to {_NAME_MAX} characters"]
    return nul_errors({"name": name})


@dataclass(frozen=True, slots=True)
class NetworkVolume:
    id: str
    name: str
    size: int  # GB, as RunPod counts it
    data_center: str
    type: str = "STANDARD"
    created_at: float = 0.0

    def validate(self) -> None:
        errors = _name_errors(self.name)
        low, high = VOLUME_SIZE_GB
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            errors.append(f"`size` must be a whole number of GB, got {self.size!r:.40}")
        elif not low <= self.size <= high:
            errors.append(f"`size` must be between {low} and {high} GB, got {self.size}")
        if not 1 <= len(self.data_center) <= 100:
            errors.append("`dataCenter` must be 1 to 100 characters")
        errors += nul_errors({"dataCenter": self.data_center})
        if self.type not in VOLUME_TYPES:
            errors.append(f"`type` must be STANDARD or HIGH_PERFORMANCE, got {self.type!r:.40}")
        if errors:
            raise BadRequest("Invalid network volume: " + "; ".join(errors) + ".")

    def public(self) -> dict[str, Any]:
        """RunPod's v2 NetworkVolume."""
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "dataCenter": self.data_center,
            "type": self.type,
        }

    def to_doc(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_doc(cls, doc: str) -> NetworkVolume:
        return cls(**json.loads(doc))


@dataclass(frozen=True, slots=True)
class Registry:
    """A container registry's credentials, without the password (write-only)."""

    id: str
    name: str
    username: str
    created_at: float = 0.0

    def validate(self) -> None:
        errors = _name_errors(self.name)
        if not 1 <= len(self.username) <= 1000:
            errors.append("`username` must be 1 to 1000 characters")
        errors += nul_errors({"username": self.username})
        if errors:
            raise BadRequest("Invalid registry: " + "; ".join(errors) + ".")

    def public(self) -> dict[str, Any]:
        """RunPod's v2 Registry: its id and name (never the credentials)."""
        return {"id": self.id, "name": self.name}

    def to_doc(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_doc(cls, doc: str) -> Registry:
        return cls(**json.loads(doc))
