"""Snapshot cold starts, the pure half (docs/snapshots.md): what a snapshot is keyed by,
which files it depends on, which images to evict, the restore-time percentiles. The I/O
(CRIU, the image directory, the processes) is fleet/snapshots.py.

A snapshot of a worker is valid for a later start when everything that shaped the
process matches:

    the endpoint and its version  argv, every env variable but the worker's own identity
                                  (IDENTITY_ENV: given to each copy after restore)
    the host                      kernel release and version, CPU flags, CRIU's version
    the files it depends on       every file mapped into it (/proc/PID/maps: the Python
                                  binary, shared libraries, weights read with mmap) and
                                  every module file it imported, by size and mtime
                                  (checked at each restore; a change -> a new snapshot)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "IDENTITY_ENV",
    "FileStamp",
    "SnapshotInfo",
    "identity_env",
    "mapped_files",
    "percentile",
    "snapshot_key",
    "stale_files",
    "to_evict",
    "uses_cuda",
]

# A worker's own variables: different in every copy, given to it after restore
IDENTITY_ENV = ("RUNPOD_POD_ID", "PODIUM_LOG_MARKER", "HOME")
# Never part of the key (the fleet's own handshake variable)
_NOT_KEYED = (*IDENTITY_ENV, "PODIUM_SNAPSHOT_FD")


@dataclass(frozen=True, slots=True)
class FileStamp:
    path: str
    size: int
    mtime_ns: int


def snapshot_key(
    endpoint_id: str, argv: Sequence[str], env: Mapping[str, str], host: Mapping[str, str]
) -> str:
    """The key of the snapshot a worker started with `argv` and `env` may be restored
    from on a host described by `host` (kernel, CPU flags, CRIU version)."""
    keyed = {k: v for k, v in env.items() if k not in _NOT_KEYED}
    blob = json.dumps(
        {"endpoint": endpoint_id, "argv": list(argv), "env": keyed, "host": dict(host)},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def identity_env(env: Mapping[str, str]) -> dict[str, str | None]:
    """What a restored copy is told about itself (None: the variable is unset)."""
    return {name: env.get(name) for name in IDENTITY_ENV}


def mapped_files(maps: str) -> list[str]:
    """The files a process maps, from its /proc/PID/maps text (anonymous and special
    mappings, and deleted files, left out)."""
    found = set()
    for line in maps.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/") and not parts[5].endswith(" (deleted)"):
            found.add(parts[5])
    return sorted(found)


def uses_cuda(maps: str) -> bool:
    """Whether a process (its /proc/PID/maps text) has an NVIDIA device mapped: it uses
    CUDA, and its checkpoint needs CRIU's CUDA plugin. A worker merely given a GPU that
    never touched it does not."""
    return any(
        (parts := line.split(None, 5)) and len(parts) == 6 and parts[5].startswith("/dev/nvidia")
        for line in maps.splitlines()
    )


def stale_files(
    recorded: Iterable[FileStamp], now: Mapping[str, FileStamp | None], limit: int = 3
) -> list[str]:
    """The recorded files that are gone or changed (at most `limit` named)."""
    out: list[str] = []
    for f in recorded:
        seen = now.get(f.path)
        if seen is None or seen.size != f.size or seen.mtime_ns != f.mtime_ns:
            out.append(f.path)
            if len(out) >= limit:
                break
    return out


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One image on disk, as its record says (`podium snapshots`, eviction)."""

    key: str
    endpoint_id: str
    size: int
    created_at: float
    used_at: float  # its last restore (or its creation)
    restores: int = 0
    dump_s: float = 0.0
    files: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "endpointId": self.endpoint_id,
            "bytes": self.size,
            "createdAt": self.created_at,
            "usedAt": self.used_at,
            "restores": self.restores,
            "dumpSeconds": round(self.dump_s, 3),
            "files": self.files,
        }


def to_evict(held: Sequence[SnapshotInfo], incoming: int, limit: int) -> list[str]:
    """The images to delete so that `incoming` more bytes fit under `limit`: least
    recently used first. Every image when even that is not enough."""
    total = sum(h.size for h in held) + incoming
    out: list[str] = []
    for h in sorted(held, key=lambda h: (h.used_at, h.key)):
        if total <= limit:
            break
        out.append(h.key)
        total -= h.size
    return out


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
