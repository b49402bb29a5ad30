"""A BatchHandler: every job of one call learns the size of its batch."""

from __future__ import annotations

from typing import Any


class Batcher:
    max_batch = 3
    max_wait_s = 5.0

    def handle_batch(self, jobs: list[dict[str, Any]]) -> list[Any]:
        ids = [job["id"] for job in jobs]
        return [
            {"error": "this one fails"}
            if job["input"].get("fail")
            else {"batch": len(jobs), "ids": ids, "n": job["input"]["n"]}
            for job in jobs
        ]


handler = Batcher()
