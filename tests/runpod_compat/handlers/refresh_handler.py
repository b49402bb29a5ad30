"""A RunPod worker started with `refresh_worker: True`: the SDK posts the result with
`"stopPod": true` and then stops its own loops, so the process exits after one job."""

import os

import runpod


def handler(job):
    return {"echo": job["input"].get("value"), "worker": os.environ["RUNPOD_POD_ID"]}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler, "refresh_worker": True})
