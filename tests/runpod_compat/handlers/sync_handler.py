"""A plain (sync) RunPod worker, configured only by RUNPOD_* env vars.

The input's `mode` picks the behaviour, so one worker process serves many tests:
echo, error (returns {"error": ...}), raise, progress (progress_update, then waits for
the test to drop a release file), refresh (returns the per-job `refresh_worker` flag).
"""

import os
import pathlib
import time

import runpod

MARKERS = pathlib.Path(os.environ["PODIUM_TEST_MARKERS"])


def handler(job):
    inp = job["input"]
    mode = inp.get("mode", "echo")
    if mode == "echo":
        return {"echo": inp.get("value"), "jobId": job["id"], "worker": os.environ["RUNPOD_POD_ID"]}
    if mode == "error":
        return {"error": inp["message"], "partial": inp.get("partial")}
    if mode == "raise":
        raise ValueError(inp["message"])
    if mode == "progress":
        runpod.serverless.progress_update(job, {"step": 1, "of": 2})
        release = MARKERS / f"release-{job['id']}"
        deadline = time.monotonic() + 20
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return {"released": release.exists()}
    if mode == "refresh":
        return {"value": inp.get("value"), "refresh_worker": True}
    raise KeyError(f"unknown mode {mode!r}")


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
