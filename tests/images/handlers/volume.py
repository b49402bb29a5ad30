"""A RunPod worker that writes and reads files of the network volume at /runpod-volume.

Input `{"write": {"name": str, "text": str}}` writes /runpod-volume/<name> and returns
`{"wrote": name}`; input `{"read": name}` returns `{"text": ...}`, or `{"error": "missing"}`
(the SDK reports a returned `error` as a FAILED job) when there is no such file. A name
must be a plain file name: one with `/` or `..` in it is refused (`{"error": "bad name ..."}`).
"""

import pathlib

import runpod

VOLUME = pathlib.Path("/runpod-volume")


def _bad(name):
    return not isinstance(name, str) or not name or "/" in name or ".." in name


def handler(job):
    inp = job["input"]
    if "write" in inp:
        name = inp["write"]["name"]
        if _bad(name):
            return {"error": f"bad name {name!r}"}
        (VOLUME / name).write_text(inp["write"]["text"])
        return {"wrote": name}
    if "read" in inp:
        name = inp["read"]
        if _bad(name):
            return {"error": f"bad name {name!r}"}
        path = VOLUME / name
        if not path.is_file():
            return {"error": "missing"}
        return {"text": path.read_text()}
    return {"error": "input must have `write` or `read`"}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
