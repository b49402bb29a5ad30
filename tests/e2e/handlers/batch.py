"""A BatchHandler: every job of one call learns the size of its batch. A job with
`{"wait_for": PATH}` holds its whole call until PATH exists (bounded), after creating
PATH.started, so a test can queue jobs behind a running batch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


class Batcher:
    max_batch = 3
    max_wait_s = 5.0

    def handle_batch(self, jobs: list[dict[str, Any]]) -> list[Any]:
        for job in jobs:
            if "wait_for" in job["input"]:
                marker = Path(job["input"]["wait_for"])
                marker.with_suffix(".started").touch()
                for _ in range(400):  # 20 s at most
                    if marker.exists():
                        break
                    time.sleep(0.05)
        ids = [job["id"] for job in jobs]
        return [
            {"error": "this one fails"}
            if job["input"].get("fail")
            else {"batch": len(jobs), "ids": ids, "n": job["input"]["n"]}
            for job in jobs
        ]


class Patient(Batcher):
    max_wait_s = 60.0  # longer than any test waits: a job that waits to fill never runs


handler = Batcher()
patient = Patient()
