"""What a worker posts to job-done, built from what a handler did. Pure: no I/O.

The shapes follow the RunPod SDK 1.12 (`rp_job.run_job` / `handle_job`, PROTOCOL.md §2.3):

    returned value x               {"output": x}
    returned dict with "error"     {"error": msg, "output": {rest}}     ("output" left out
                                                                         when rest is {})
    returned {} (or only flags)    {}
    returned "refresh_worker": true  the same, plus "stopPod": true
    raised an exception            {"error": "<JSON: error_type, error_message,
                                    error_traceback, hostname, worker_id, runpod_version>"}
    generator finished             {"output": [chunks]} (aggregate) or {"output": []}
    generator yielded {"error": e} {"error": "e"} and the generator is not resumed
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium import __version__ as podium_version

__all__ = [
    "RUNPOD_COMPAT_VERSION",
    "batch_payloads",
    "chunk_error",
    "encode",
    "encode_chunk",
    "error_payload",
    "exception_payload",
    "output_payload",
    "stream_payload",
]

# The SDK release whose wire behaviour this worker reproduces.
RUNPOD_COMPAT_VERSION = "1.12.0"
_RUNTIME_DIR = str(Path(__file__).resolve().parent)

Payload = dict[str, Any]


def output_payload(value: Any) -> Payload:
    """A handler's return value -> the job-done body (the handler's dict is not mutated)."""
    if not isinstance(value, dict):
        return {"output": value}
    rest = dict(value)
    error = rest.pop("error", None)
    refresh = rest.pop("refresh_worker", None)
    payload: Payload = {}
    if rest:
        payload["output"] = rest
    if error:
        payload["error"] = error
    if refresh:
        payload["stopPod"] = True
    return payload


def error_payload(message: str) -> Payload:
    return {"error": message}


def exception_payload(exc: BaseException, worker_id: str, hostname: str) -> Payload:
    """A raised exception -> `{"error": "<JSON string>"}`, field for field as the SDK."""
    # Leave out the runtime's own frames above the handler's: the traceback starts in it.
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_RUNTIME_DIR):
            break
        tb = tb.tb_next
    info = {
        "error_type": str(type(exc)),
        "error_message": str(exc),
        "error_traceback": "".join(traceback.format_exception(type(exc), exc, tb)),
        "hostname": hostname,
        "worker_id": worker_id,
        "runpod_version": RUNPOD_COMPAT_VERSION,
        "podium_version": podium_version,
    }
    return {"error": json.dumps(info)}


def chunk_error(chunk: Any) -> str | None:
    """A streamed chunk that is a dict with a truthy "error" ends the stream as FAILED."""
    if isinstance(chunk, dict) and chunk.get("error"):
        return str(chunk["error"])
    return None


def stream_payload(chunks: Sequence[Any], aggregate: bool) -> Payload:
    """The final isStream=true post of a generator handler."""
    return {"output": list(chunks) if aggregate else []}


def batch_payloads(results: Any, n: int) -> list[Payload]:
    """handle_batch's return value -> one payload per job, in order."""
    if not isinstance(results, list | tuple):
        message = f"handle_batch must return a list, got {type(results).__name__}."
        return [error_payload(message) for _ in range(n)]
    if len(results) != n:
        message = f"handle_batch returned {len(results)} results for {n} jobs; return one per job."
        return [error_payload(message) for _ in range(n)]
    return [output_payload(r) for r in results]


def encode(payload: Payload) -> tuple[bytes, bool]:
    """(JSON bytes of a payload, whether it reports a failure). An output that JSON cannot
    carry becomes a clear error instead (the SDK drops such a result)."""
    try:
        return json.dumps(payload, ensure_ascii=False).encode("utf-8"), bool(payload.get("error"))
    except (TypeError, ValueError) as exc:
        fallback: Payload = {"error": f"The handler's output is not JSON-serializable: {exc}"}
        if payload.get("stopPod"):
            fallback["stopPod"] = True
        return json.dumps(fallback).encode("utf-8"), True


def encode_chunk(chunk: Any) -> bytes:
    """The job-stream body of one chunk; TypeError/ValueError when JSON cannot carry it."""
    return b'{"output": ' + json.dumps(chunk, ensure_ascii=False).encode("utf-8") + b"}"
