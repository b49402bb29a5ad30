"""A Podium handler for the fleet tests: sleeps `seconds` (default 1), then echoes.

Run as `python -m podium.worker tests/fleet/handlers/sleepy.py:handler`. The output says
which worker ran the job and which GPUs it was given, so tests can check assignment.
"""

from __future__ import annotations

import os
import time
from typing import Any


def handler(job: dict[str, Any]) -> dict[str, Any]:
    inp = job["input"]
    time.sleep(float(inp.get("seconds", 1.0)))
    return {
        "echo": inp.get("value"),
        "worker": os.environ.get("RUNPOD_POD_ID"),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "home": os.environ.get("HOME"),
        "extra": os.environ.get("FLEET_TEST_VAR"),
    }
