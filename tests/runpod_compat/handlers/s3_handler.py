"""A RunPod worker that returns what it received of the job: its keys and its s3Config
(read as the SDK's upload helpers read it, `job["s3Config"]`: a KeyError when missing)."""

import runpod


def handler(job):
    return {"keys": sorted(job), "s3Config": job["s3Config"], "input": job["input"]}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
