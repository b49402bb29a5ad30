"""`podium run`, `podium status` and `podium decode` (cli/jobs.py)."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image


def _png() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_run_queues_and_status_shows_the_result(cli):
    ep = cli.endpoint()
    r = cli("run", ep["id"], '{"prompt": "a dog"}')
    assert r.exit_code == 0, r.output
    job_id = json.loads(r.stdout)["id"]
    worker = cli.worker(ep["workerToken"])
    taken = worker.get(f"/v2/{ep['id']}/job-take/w1?hold=0").json()
    assert taken["id"] == job_id and taken["input"] == {"prompt": "a dog"}
    worker.post(f"/v2/{ep['id']}/job-done/w1/{job_id}", content=b'{"output": {"ok": 1}}')
    status = json.loads(cli("status", ep["id"], job_id).stdout)
    assert status["status"] == "COMPLETED" and status["output"] == {"ok": 1}


def test_run_refuses_input_that_is_not_json(cli):
    ep = cli.endpoint()
    r = cli("run", ep["id"], "{not json")
    assert r.exit_code == 2


def test_decode_writes_the_first_image(cli, tmp_path):
    status = tmp_path / "output.json"
    status.write_text(json.dumps({"status": "COMPLETED", "output": [{"image": _png(), "seed": 1}]}))
    target = tmp_path / "decoded_image.png"
    r = cli("decode", str(status), str(target))
    assert r.exit_code == 0, r.output
    with Image.open(target) as image:
        assert image.size == (8, 8)


def test_decode_of_a_file_without_an_image_exits_1(cli, tmp_path):
    status = tmp_path / "output.json"
    status.write_text(json.dumps({"status": "FAILED", "error": "boom"}))
    r = cli("decode", str(status), str(tmp_path / "x.png"))
    assert r.exit_code == 1
