"""A generator RunPod worker (streaming).

PODIUM_TEST_AGGREGATE=1 sets `return_aggregate_stream`; PODIUM_TEST_GEN_KIND=async makes
the handler an async generator. Input: n chunks, delay seconds between them, and
`fail_after` (raise after that many chunks).
"""

import asyncio
import os
import time

import runpod

AGGREGATE = os.environ.get("PODIUM_TEST_AGGREGATE") == "1"
ASYNC_GEN = os.environ.get("PODIUM_TEST_GEN_KIND") == "async"


def _chunk(i):
    return {"i": i, "text": f"chunk-{i}"}


def sync_handler(job):
    inp = job["input"]
    for i in range(int(inp.get("n", 3))):
        if inp.get("fail_after") == i:
            raise RuntimeError("generator broke")
        time.sleep(float(inp.get("delay", 0.0)))
        yield _chunk(i)


async def async_handler(job):
    inp = job["input"]
    for i in range(int(inp.get("n", 3))):
        if inp.get("fail_after") == i:
            raise RuntimeError("generator broke")
        await asyncio.sleep(float(inp.get("delay", 0.0)))
        yield _chunk(i)


if __name__ == "__main__":
    runpod.serverless.start(
        {
            "handler": async_handler if ASYNC_GEN else sync_handler,
            "return_aggregate_stream": AGGREGATE,
        }
    )
