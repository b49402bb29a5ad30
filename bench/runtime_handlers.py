"""Handlers of bench/worker_runtime.py, for Podium's runtime and (run as a program) for the
runpod SDK: a no-op, and a generator that streams `STREAM_CHUNKS` small chunks.

    python -m podium.worker bench/runtime_handlers.py:noop          Podium's runtime
    .venv-runpod/bin/python bench/runtime_handlers.py noop 4         runpod SDK, concurrency 4
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

STREAM_CHUNKS = 3


def noop(job: dict[str, Any]) -> dict[str, Any]:
    return {}


def stream(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for i in range(STREAM_CHUNKS):
        yield {"i": i}


def _runpod(kind: str, concurrency: int) -> None:
    import runpod  # only in .venv-runpod

    runpod.serverless.start(
        {
            "handler": noop if kind == "noop" else stream,
            "concurrency_modifier": lambda _current: concurrency,
            "return_aggregate_stream": False,
        }
    )


if __name__ == "__main__":
    _runpod(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
