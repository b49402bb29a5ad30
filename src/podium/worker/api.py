"""What a handler may call while it runs (the RunPod SDK's helpers, and Podium's).

The runtime (podium.worker.runtime) registers a per-job context before it calls the
handler and removes it after; these functions find it by the job's id, so a handler
only needs the `job` dict it was given — exactly like `runpod.serverless.progress_update`.

A handler is a callable `handler(job) -> output` (sync, async, generator or async
generator). A *batch* handler is an object with `handle_batch(jobs) -> list[result]`,
`max_batch` and `max_wait_s`: the runtime takes up to `max_batch` jobs at once
(job-take-batch) and calls it with all of them; it returns one result per job, each
either an output or a dict with an `error` key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "BatchHandler",
    "JobContext",
    "is_cancelled",
    "progress_update",
    "register",
    "unregister",
]


@dataclass(slots=True)
class JobContext:
    job_id: str
    send_progress: Callable[[Any], None]
    cancelled: threading.Event = field(default_factory=threading.Event)


_contexts: dict[str, JobContext] = {}
_lock = threading.Lock()


def register(ctx: JobContext) -> None:
    with _lock:
        _contexts[ctx.job_id] = ctx


def unregister(job_id: str) -> None:
    with _lock:
        _contexts.pop(job_id, None)


def _context(job: dict[str, Any] | str) -> JobContext | None:
    job_id = job if isinstance(job, str) else job.get("id")
    with _lock:
        return _contexts.get(str(job_id))


def progress_update(job: dict[str, Any], progress: Any) -> None:
    """Report progress; `status` shows it as `output` while the job is IN_PROGRESS."""
    ctx = _context(job)
    if ctx is not None:
        ctx.send_progress(progress)


def is_cancelled(job: dict[str, Any] | str) -> bool:
    """True once the job was cancelled or timed out: stop work at the next safe point."""
    ctx = _context(job)
    return ctx is not None and ctx.cancelled.is_set()


@runtime_checkable
class BatchHandler(Protocol):
    max_batch: int
    max_wait_s: float

    def handle_batch(self, jobs: list[dict[str, Any]]) -> list[Any]: ...
