"""podium.sd.allocator: glibc takes the settings (in a child process: they are process-wide)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

PROBE = """
import ctypes, sys
sys.path.insert(0, SRC)
from podium.sd import allocator


class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena ordblks smblks hblks hblkhd usmblks "
                                               "fsmblks uordblks fordblks keepcost").split()]


libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = Info


def mapped_while_holding_64_mib() -> bool:
    block = libc.malloc(64 << 20)
    mapped = libc.mallinfo2().hblkhd >= 64 << 20
    libc.free(block)
    return mapped


before = mapped_while_holding_64_mib()  # glibc's default: a block this big is mmapped
print(before, allocator.tune(), allocator.tune(), mapped_while_holding_64_mib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_takes_the_settings_and_big_blocks_come_from_the_heap() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.replace("SRC", repr(SRC))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # mapped by default; tune() applied (twice: idempotent); then from the heap
    assert out.stdout.split() == ["True", "True", "True", "False"]
