"""`gpuIds`: which GPUs an endpoint's workers may use. Pure: parsing and matching, no I/O.

""                   any GPU
"0,1"                these GPU indices (the local fleet only: Ray assigns GPUs itself)
"24GB", "80000MB"    a minimum memory (a unit is required; a bare number is an index)
"A100", "RTX 4090"   GPU type names, comma-separated: a GPU whose name contains one of
                     them (case-insensitive), e.g. "A100" matches "NVIDIA A100-SXM4-80GB"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from podium.codec import ascii_digits

__all__ = [
    "GPU_POOLS",
    "GpuRequest",
    "gpu_ids_for_pools",
    "gpu_ids_for_v2_pools",
    "gpu_ids_from_types",
    "gpu_type_ids",
    "parse_gpu_ids",
]

_MEMORY = re.compile(r"^(?P<n>\d+(\.\d+)?)\s*(?P<unit>[A-Za-z]+)$")
_UNITS_MB = {"GB": 1000, "G": 1000, "GIB": 1024, "MB": 1, "MIB": 1, "M": 1}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 ._-]*$")


@dataclass(frozen=True, slots=True)
class GpuRequest:
    """What `gpuIds` asks for: some indices, a minimum memory, some type names, or (all
    None) any GPU."""

    indices: tuple[int, ...] | None = None
    min_memory_mb: int | None = None
    names: tuple[str, ...] | None = None

    def matches(self, index: int, name: str, memory_mb: int) -> bool:
        """Whether one GPU satisfies the request."""
        if self.indices is not None and index not in self.indices:
            return False
        if self.min_memory_mb is not None and memory_mb < self.min_memory_mb:
            return False
        if self.names is not None:
            lowered = name.lower()
            return any(n.lower() in lowered for n in self.names)
        return True


def parse_gpu_ids(text: str | None) -> GpuRequest:
    """The request `text` stands for (see the module docstring). ValueError with a message
    that names the value when it is none of them."""
    raw = (text or "").strip()
    if not raw:
        return GpuRequest()
    parts = [p.strip() for p in raw.split(",")]
    if all(ascii_digits(p) for p in parts):
        return GpuRequest(indices=tuple(dict.fromkeys(int(p) for p in parts)))
    match = _MEMORY.match(raw)
    if match is not None:
        unit = match["unit"].upper()
        if unit not in _UNITS_MB:
            raise ValueError(
                f"`gpuIds` {raw!r} has an unknown memory unit {match['unit']!r}: use GB, GiB or MB"
            )
        # GB as cards are sold: nvidia-smi shows a "24 GB" RTX 4090 as 24564 MiB and an
        # "80 GB" H100 as 81559 MiB, so 1 GB counts as 1000 MiB here (GiB is 1024 MiB).
        return GpuRequest(min_memory_mb=int(float(match["n"]) * _UNITS_MB[unit]))
    if all(p and _NAME.match(p) for p in parts):
        return GpuRequest(names=tuple(dict.fromkeys(parts)))
    raise ValueError(
        "`gpuIds` must list GPU indices ('0,1'), a minimum memory ('24GB') or GPU type "
        f"names ('A100,H100'), got {raw!r}"
    )


# RunPod's REST API names GPU types in a list, `gpuTypeIds` (["NVIDIA GeForce RTX 4090"]);
# Podium's `gpuIds` holds the same as comma-separated type names.


def gpu_type_ids(gpu_ids: str | None) -> list[str]:
    """`gpuTypeIds` of an endpoint: its type names ([] for indices, a memory or any GPU)."""
    try:
        return list(parse_gpu_ids(gpu_ids).names or ())
    except ValueError:
        return []


def gpu_ids_from_types(names: list[str]) -> str:
    """`gpuIds` for RunPod's `gpuTypeIds`; ValueError naming a type that cannot be one."""
    for name in names:
        if not name.strip() or "," in name or not _NAME.match(name.strip()):
            raise ValueError(f"`gpuTypeIds` holds {name!r}, which is not a GPU type name")
    return ",".join(n.strip() for n in names)


# RunPod's GPU pools -> the least memory of their cards (GB as cards are sold).
GPU_POOLS = {
    "AMPERE_16": 16,
    "AMPERE_24": 24,
    "ADA_24": 24,
    "AMPERE_48": 48,
    "ADA_48_PRO": 48,
    "AMPERE_80": 80,
    "ADA_80_PRO": 80,
    "ADA_32_PRO": 32,
    "HOPPER_141": 141,
}
_POOL = re.compile(r"^[A-Z0-9_]+$")


def gpu_ids_for_pools(text: str) -> str:
    """`gpuIds` for RunPod's pool list ("AMPERE_16,ADA_24"): any GPU with at least the
    smallest pool's memory. Anything else is taken as Podium's own `gpuIds`."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if parts and all(_POOL.match(p) for p in parts) and all(p in GPU_POOLS for p in parts):
        return f"{min(GPU_POOLS[p] for p in parts)}GB"
    return text


def gpu_ids_for_v2_pools(pools: list[str]) -> str:
    """`gpuIds` for REST v2's `gpu.pools`: RunPod's memory classes (GPU_POOLS) become the
    least memory among them; GPU type names (`NVIDIA GeForce RTX 4090`) are matched by name
    when no memory class is given. [] or ["ANY"]: any GPU."""
    known = [GPU_POOLS[p] for p in pools if p in GPU_POOLS]
    if known:
        return f"{min(known)}GB"
    names = [p.strip() for p in pools if p.strip() and p.strip().upper() != "ANY"]
    return ",".join(names)
