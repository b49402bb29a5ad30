"""glibc malloc settings for a process that runs the SD pipeline on the CPU. Edge code.

Every denoising step allocates and frees the same large buffers (activations, and the
blocked copies of conv weights that oneDNN makes per call: tens of MB each). With glibc's
defaults a buffer above the mmap threshold (at most 32 MiB, however it adapts) is mapped
on malloc and unmapped on free, and a heap's free top is trimmed, so every step maps fresh
zeroed pages and page-faults on each one: measured on sd15-random at 128², 1.4 million
minor faults and ~40% of the CPU time per 2-step image (docs/benchmarks.md, "Stable
Diffusion worker"). Keeping freed memory for reuse removes that: no mmap for allocations
(M_MMAP_MAX 0: every block comes from the heap and goes back to it), no trimming, and one
arena, so that the handler thread reuses the same heap as the main thread.

The cost is memory held after a peak instead of returned: the process keeps its
high-water mark, which for a worker that serves one model at steady sizes is what it
needs again on the next job anyway.

`tune()` calls `mallopt` in the running process; it must run before threads allocate
(a thread that already has an arena keeps it), so the SD handler calls it first thing.
Where libc is not glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["MALLOC_SETTINGS", "tune"]

log = logging.getLogger(__name__)

# glibc's malloc.h parameter numbers.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

TRIM_THRESHOLD = 2**31 - 1  # mallopt's int maximum: trim only a free top above 2 GiB

# The same as MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=2147483647 MALLOC_MMAP_MAX_=0 in
# the environment of a process, which is how they were measured.
MALLOC_SETTINGS = {
    _M_ARENA_MAX: 1,
    _M_TRIM_THRESHOLD: TRIM_THRESHOLD,
    _M_MMAP_MAX: 0,
}
_applied = False


def tune() -> bool:
    """Apply MALLOC_SETTINGS once per process; True when glibc took them all."""
    global _applied
    if _applied:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc: no mallopt, nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = True
    for param, value in MALLOC_SETTINGS.items():
        if mallopt(param, value) != 1:
            log.warning("mallopt(%d, %d) was refused; the SD worker may page-fault", param, value)
            ok = False
    _applied = ok
    return ok
