"""An `async def` RunPod worker. Modes: echo, and sleep (a loop of short awaits that a
cancel must interrupt through the worker's stop channel; it leaves marker files)."""

import asyncio
import os
import pathlib

import runpod

MARKERS = pathlib.Path(os.environ["PODIUM_TEST_MARKERS"])


async def handler(job):
    inp = job["input"]
    mode = inp.get("mode", "echo")
    if mode == "echo":
        await asyncio.sleep(0)
        return {"echo": inp.get("value"), "jobId": job["id"], "worker": os.environ["RUNPOD_POD_ID"]}
    if mode == "sleep":
        (MARKERS / f"started-{job['id']}").touch()
        try:
            for _ in range(int(float(inp.get("seconds", 30)) * 10)):
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            (MARKERS / f"stopped-{job['id']}").touch()
            raise
        (MARKERS / f"finished-{job['id']}").touch()
        return {"slept": True}
    raise KeyError(f"unknown mode {mode!r}")


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
