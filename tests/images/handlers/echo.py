"""A RunPod worker that echoes its input, and says which worker ran it."""

import os

import runpod


def handler(job):
    return {"echo": job["input"], "worker": os.environ.get("RUNPOD_POD_ID")}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
