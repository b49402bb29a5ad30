"""GPUs: discovery (I/O at the edge, its input injectable) and assignment (pure).

Discovery asks, in order:
1. an inventory given by configuration (`PODIUM_GPUS`: `none`, or nvidia-smi's CSV
   lines `index, name, memory MiB` separated by newlines or `;`), which is also how
   tests inject fake inventories;
2. `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits`;
3. torch.cuda, in a short-lived subprocess (importing torch costs the gateway ~300 MB);
4. nothing: workers run on the CPU, and the inventory carries a warning saying so.

Assignment never hands one GPU to two workers: `assign` picks from the GPUs an endpoint
allows (`gpuIds`, podium.endpoints.gpu_ids) that no worker holds, smallest memory first
so that big GPUs stay free for endpoints that need them.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Collection, Sequence

from podium.board import Gpu, Inventory
from podium.endpoints.gpu_ids import GpuRequest

__all__ = [
    "assign",
    "discover",
    "eligible",
    "parse_nvidia_smi",
    "why_throttled",
]

log = logging.getLogger("podium.fleet")

NVIDIA_SMI_ARGS = ("--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits")
CPU_WARNING = (
    "No GPU found (no nvidia-smi, no CUDA in torch): workers run on the CPU, which is "
    "fine for tests and tiny models but very slow for Stable Diffusion."
)
_TORCH_PROBE = (
    "import torch\n"
    "if torch.cuda.is_available():\n"
    "    for i in range(torch.cuda.device_count()):\n"
    "        p = torch.cuda.get_device_properties(i)\n"
    "        print(f'{i}, {p.name}, {p.total_memory // (1024 * 1024)}')\n"
)


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Lines `index, name, memory MiB` (nvidia-smi's csv,noheader,nounits) -> GPUs.

    Lines that do not parse are skipped with a warning (a driver message, say)."""
    gpus: list[Gpu] = []
    for line in re.split(r"[\n;]", text):
        line = line.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            index, memory = int(parts[0]), int(float(parts[-1]))
            name = ", ".join(parts[1:-1]) or "GPU"
        except (ValueError, IndexError):
            log.warning("GPU discovery: skipped a line it cannot read: %r", line)
            continue
        gpus.append(Gpu(index, name, memory))
    return gpus


def _run(argv: Sequence[str], timeout: float) -> str | None:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _probe_nvidia_smi(run: Callable[[Sequence[str], float], str | None]) -> list[Gpu] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    out = run([exe, *NVIDIA_SMI_ARGS], 10.0)
    return None if out is None else parse_nvidia_smi(out)


def _probe_torch(run: Callable[[Sequence[str], float], str | None]) -> list[Gpu] | None:
    if importlib.util.find_spec("torch") is None:
        return None
    out = run([sys.executable, "-c", _TORCH_PROBE], 60.0)
    return None if out is None else parse_nvidia_smi(out)


def discover(
    configured: str | None = None,
    run: Callable[[Sequence[str], float], str | None] = _run,
) -> Inventory:
    """The GPUs of this machine (see the module docstring). `run(argv, timeout)` returns
    a command's stdout or None; tests pass their own."""
    if configured is not None and configured.strip():
        if configured.strip().lower() in ("none", "cpu"):
            return Inventory((), "config", CPU_WARNING)
        gpus = parse_nvidia_smi(configured)
        if not gpus:
            raise ValueError(
                f"PODIUM_GPUS must be 'none' or lines 'index, name, memory MiB', got {configured!r}"
            )
        return Inventory(tuple(gpus), "config")
    for source, probe in (("nvidia-smi", _probe_nvidia_smi), ("torch", _probe_torch)):
        found = probe(run)
        if found:
            return Inventory(tuple(found), source)
    return Inventory((), "none", CPU_WARNING)


def eligible(inventory: Inventory, request: GpuRequest) -> list[Gpu]:
    """The GPUs an endpoint may use, smallest memory first (then by index)."""
    gpus = [g for g in inventory.gpus if request.matches(g.index, g.name, g.memory_mb)]
    return sorted(gpus, key=lambda g: (g.memory_mb, g.index))


def assign(
    inventory: Inventory, request: GpuRequest, count: int, in_use: Collection[int]
) -> tuple[int, ...] | None:
    """GPU indices for one new worker, or None when too few eligible GPUs are free
    (the worker is then `throttled`). On a CPU-only inventory: () (a CPU worker)."""
    if inventory.cpu_only:
        return ()
    free = [g.index for g in eligible(inventory, request) if g.index not in in_use]
    if len(free) < count:
        return None
    return tuple(sorted(free[:count]))


def why_throttled(inventory: Inventory, request: GpuRequest, count: int) -> str:
    """One sentence for a throttled worker: busy GPUs, or none that could ever fit."""
    fit = eligible(inventory, request)
    if len(fit) < count:
        have = ", ".join(f"{g.index}: {g.name} {g.memory_mb} MiB" for g in inventory.gpus)
        return (
            f"no {count} GPU(s) on this machine match gpuIds (have {have or 'none'}); "
            "change gpuIds or gpuCount"
        )
    return "every GPU this endpoint may use is held by another worker; waiting for one"
