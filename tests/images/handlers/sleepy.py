"""A RunPod worker that sleeps `seconds` (input `{"seconds": float}`), then says so."""

import os
import time

import runpod


def handler(job):
    seconds = float(job["input"]["seconds"])
    time.sleep(seconds)
    return {"slept": seconds, "worker": os.environ.get("RUNPOD_POD_ID")}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
