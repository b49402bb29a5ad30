"""Sync handlers: one behaviour each, chosen by the test's MODULE:FUNCTION."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from podium.worker import is_cancelled, progress_update


def echo(job: dict[str, Any]) -> dict[str, Any]:
    return {"echo": job["input"], "worker": os.environ.get("RUNPOD_POD_ID")}


def returns_error(job: dict[str, Any]) -> dict[str, Any]:
    return {"error": "the prompt is too long", "partial": 1}


def raises(job: dict[str, Any]) -> None:
    raise ValueError("boom: " + str(job["input"].get("why", "")))


def not_json(job: dict[str, Any]) -> Any:
    return {"value": {1, 2, 3}}


def progress(job: dict[str, Any]) -> str:
    """Reports step 1, then waits (bounded) until the test creates the `go` file."""
    progress_update(job, {"step": 1, "steps": 2})
    go = Path(job["input"]["go"])
    deadline = time.monotonic() + 20
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return "done"


def refresh(job: dict[str, Any]) -> dict[str, Any]:
    return {"refresh_worker": True, "x": 1}


def sleeper(job: dict[str, Any]) -> dict[str, Any]:
    """Sleeps `seconds`, checking is_cancelled; writes `marker` when it notices a cancel
    (and `started`, if given, as it starts)."""
    inp = job["input"]
    if inp.get("started"):
        Path(inp["started"]).write_text("started")
    started = time.time()
    while time.time() - started < inp.get("seconds", 1.0):
        if is_cancelled(job):
            Path(inp["marker"]).write_text("cancelled")
            return {"cancelled": True}
        time.sleep(0.02)
    return {"start": started, "end": time.time()}


def busy(job: dict[str, Any]) -> dict[str, int]:
    """Pure-Python CPU work (holds the GIL between switch intervals) for `seconds`."""
    end = time.monotonic() + job["input"]["seconds"]
    n = 0
    while time.monotonic() < end:
        for _ in range(1000):
            n += 1
    return {"loops": n}
