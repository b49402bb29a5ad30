"""The handlers of bench/soak.py's workers: an echo that takes a little while, and a
generator that streams its input back in chunks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any


def echo(job: dict[str, Any]) -> dict[str, Any]:
    inp = job["input"]
    time.sleep(min(float(inp.get("ms", 0)), 500) / 1000)
    return {"echo": inp}


def chunks(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    inp = job["input"]
    for i in range(int(inp.get("n", 3))):
        time.sleep(0.02)
        yield {"i": i, "tag": inp.get("tag")}
