"""Async handlers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any


async def echo(job: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    return {"echo": job["input"], "async": True}


async def sleeper(job: dict[str, Any]) -> dict[str, Any]:
    """Sleeps `seconds`; a stop cancels the task, and the handler records it in `marker`."""
    try:
        await asyncio.sleep(job["input"].get("seconds", 1.0))
    except asyncio.CancelledError:
        Path(job["input"]["marker"]).write_text("cancelled")  # noqa: ASYNC240 (tiny, test-only)
        raise
    return {"slept": True}


async def busy(job: dict[str, Any]) -> dict[str, int]:
    """CPU work that never awaits: it blocks the worker's event loop for `seconds`."""
    end = time.monotonic() + job["input"]["seconds"]
    n = 0
    while time.monotonic() < end:
        for _ in range(1000):
            n += 1
    return {"loops": n}
