"""How this worker process came up: the times it reports on its pings (`exec_ms`,
`boot_ms`, `load_ms`, epoch milliseconds; a Podium extension of the ping), so that the
gateway's workers list shows them and bench/fleet_cold.py can split a cold start into
process start and model load.

    exec    the process began (the kernel's record, Linux; absent elsewhere)
    boot    the runtime is up (Python and Podium imported), about to build the handler
    load    the handler is built (its module imported, the model loaded)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Startup", "process_exec_time"]


def process_exec_time() -> float | None:
    """When this process began, in epoch seconds (to the kernel's clock tick, 10 ms),
    from /proc; None where there is no /proc."""
    try:
        stat = Path("/proc/self/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class Startup:
    exec_at: float | None
    booted_at: float
    loaded_at: float

    @classmethod
    def now(cls, booted_at: float | None = None) -> Startup:
        """The handler was just built (`booted_at`: when building began; default now)."""
        loaded = time.time()
        return cls(process_exec_time(), loaded if booted_at is None else booted_at, loaded)

    def params(self) -> dict[str, str]:
        out = {
            "boot_ms": str(round(self.booted_at * 1000)),
            "load_ms": str(round(self.loaded_at * 1000)),
        }
        if self.exec_at is not None:
            out["exec_ms"] = str(round(self.exec_at * 1000))
        return out
