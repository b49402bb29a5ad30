"""glibc malloc settings for a process that runs the SD pipeline on the CPU. Edge code.

Every denoising step allocates and frees the same large activation buffers. With glibc's
defaults a freed buffer above the (dynamic) mmap threshold goes back to the kernel
(munmap) and the top of a heap is trimmed, so the next step maps fresh zeroed pages and
page-faults on every one of them: measured on sd15-random at 128², about 1.4 million minor
faults per 2-step image and a large share of the process's CPU time in the kernel
(docs/benchmarks.md, "Stable Diffusion worker"). Keeping freed memory for reuse removes
that: one arena (the handler thread allocates from the same heap as the main thread), no
trimming, and a fixed mmap threshold at glibc's maximum (32 MiB) so buffers below it stay
in the heap.

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
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc refuses more on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 2**31 - 1  # mallopt's int maximum: trim only a free top above 2 GiB

MALLOC_SETTINGS = {
    _M_ARENA_MAX: 1,
    _M_TRIM_THRESHOLD: TRIM_THRESHOLD,
    _M_MMAP_THRESHOLD: MMAP_THRESHOLD_MAX,
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
