"""An unmodified runpod SDK worker for the log tests: prints `<tag> line <i>` lines."""

import sys

import runpod


def handler(job):
    inp = job["input"]
    tag = inp["tag"]
    for i in range(int(inp.get("lines", 3))):
        print(f"{tag} line {i}")
    print(f"{tag} on stderr", file=sys.stderr)
    return {"tag": tag}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
