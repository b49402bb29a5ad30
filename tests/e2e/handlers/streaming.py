"""Generator handlers (sync and async) that stream `n` chunks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any


def gen(job: dict[str, Any]) -> Iterator[dict[str, int]]:
    for i in range(job["input"]["n"]):
        time.sleep(job["input"].get("pause", 0.0))
        yield {"i": i}


async def agen(job: dict[str, Any]) -> AsyncIterator[str]:
    for i in range(job["input"]["n"]):
        await asyncio.sleep(job["input"].get("pause", 0.0))
        yield f"token-{i}"


def gen_raises(job: dict[str, Any]) -> Iterator[int]:
    yield 1
    raise RuntimeError("generator broke")


if __name__ == "__main__":
    # A RunPod-style worker script: the drop-in for runpod.serverless.start.
    from podium.worker import start

    start({"handler": agen, "return_aggregate_stream": True})
