"""Podium's worker runtime: pull jobs from a Podium gateway (or RunPod) and run a handler.

    from podium.worker import start, progress_update, is_cancelled

    def handler(job):
        return {"echo": job["input"]}

    start({"handler": handler})      # a drop-in for runpod.serverless.start

or `podium worker module:handler` / `python -m podium.worker module:handler`. Settings
come from RUNPOD_* / PODIUM_* environment variables (podium.worker.config). Only httpx is
needed; the runpod package is not.
"""

from __future__ import annotations

from podium.worker.api import BatchHandler, JobContext, is_cancelled, progress_update
from podium.worker.config import ConfigError, WorkerConfig
from podium.worker.handlers import load_handler
from podium.worker.runtime import Worker, run_worker, start

__all__ = [
    "BatchHandler",
    "ConfigError",
    "JobContext",
    "Worker",
    "WorkerConfig",
    "is_cancelled",
    "load_handler",
    "progress_update",
    "run_worker",
    "start",
]
