"""The RunPod SD tutorial through a real gateway and a real SD worker (tiny model)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from podium.output_images import decode_status_file
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.sd]

PROMPT = "A cute fluffy white dog in the style of a Pixar animation 3D drawing."


@pytest.fixture
def sd(gateway, tmp_path):
    ep = gateway.create_endpoint(name="sd", templateId="sd15", model="tiny", workersMax=0)
    env = {
        **os.environ,
        "PODIUM_DATA_DIR": str(tmp_path / "worker"),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    }
    with (tmp_path / "sd-worker.log").open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "podium.cli",
                "worker",
                "--gateway",
                gateway.url,
                "--endpoint",
                ep["id"],
                "--token",
                ep["workerToken"],
                "--template",
                "sd15",
                "--model",
                "tiny",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        yield ep
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _final(c, ep, job_id, timeout=120):
    def done():
        st = c.get(f"/v2/{ep['id']}/status/{job_id}", params={"wait": 1000}).json()
        return st if st["status"] not in ("IN_QUEUE", "IN_PROGRESS") else None

    return wait_until(done, timeout=timeout, interval=0, what=f"job {job_id} to finish")


def test_tutorial_run_status_decode(gateway, sd, tmp_path):
    with gateway.client() as c:
        r = c.post(
            f"/v2/{sd['id']}/run",
            json={
                "input": {"prompt": PROMPT, "width": 128, "height": 96, "num_inference_steps": 2}
            },
        )
        assert r.json()["status"] == "IN_QUEUE"
        st = _final(c, sd, r.json()["id"])
    assert st["status"] == "COMPLETED", st
    assert st["delayTime"] >= 0 and st["executionTime"] > 0
    [item] = st["output"]
    assert isinstance(item["seed"], int)
    with Image.open(io.BytesIO(base64.b64decode(item["image"]))) as image:
        image.load()
    assert image.format == "PNG" and image.size == (128, 96)
    saved = tmp_path / "output.json"
    saved.write_text(json.dumps(st))
    out = tmp_path / "decoded_image.png"
    assert decode_status_file(saved, out).startswith("Image successfully decoded")
    with Image.open(out) as decoded:
        assert decoded.size == (128, 96)


def test_same_seed_same_bytes_and_bad_input_refused(gateway, sd):
    body = {
        "input": {
            "prompt": "dog",
            "width": 64,
            "height": 64,
            "num_inference_steps": 2,
            "seed": 1234,
        }
    }
    with gateway.client() as c:
        a = _final(c, sd, c.post(f"/v2/{sd['id']}/run", json=body).json()["id"])
        b = _final(c, sd, c.post(f"/v2/{sd['id']}/run", json=body).json()["id"])
        assert a["output"] == b["output"] and a["output"][0]["seed"] == 1234
        r = c.post(f"/v2/{sd['id']}/run", json={"input": {"prompt": "dog", "scheduler": "X"}})
        assert r.status_code == 400 and "scheduler" in r.json()["error"]


def test_cancel_stops_a_long_generation_and_frees_the_worker(gateway, sd):
    with gateway.client() as c:
        long = c.post(
            f"/v2/{sd['id']}/run",
            json={
                "input": {"prompt": "dog", "width": 64, "height": 64, "num_inference_steps": 500}
            },
        ).json()

        def progressing():
            st = c.get(f"/v2/{sd['id']}/status/{long['id']}", params={"wait": 1000}).json()
            out = st.get("output")
            return st if isinstance(out, dict) and out.get("step", 0) >= 2 else None

        st = wait_until(progressing, timeout=60, interval=0, what="per-step progress")
        assert st["status"] == "IN_PROGRESS" and st["output"]["steps"] == 500
        assert c.post(f"/v2/{sd['id']}/cancel/{long['id']}").json()["status"] == "CANCELLED"
        quick = c.post(
            f"/v2/{sd['id']}/run",
            json={"input": {"prompt": "dog", "width": 64, "height": 64, "num_inference_steps": 2}},
        ).json()
        # the worker drops the long job between steps and takes the next one
        st = _final(c, sd, quick["id"], timeout=30)
        assert st["status"] == "COMPLETED"
        assert c.get(f"/v2/{sd['id']}/status/{long['id']}").json()["status"] == "CANCELLED"
