"""`podium decode`: the tutorial's decode step, with the tutorial's messages."""

from __future__ import annotations

import base64
import json

from typer.testing import CliRunner

from podium.cli import app

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_decode_writes_the_png(tmp_path):
    src = tmp_path / "output.json"
    src.write_text(
        json.dumps(
            {
                "status": "COMPLETED",
                "output": [{"image": base64.b64encode(PNG).decode(), "seed": 1}],
            }
        )
    )
    out = tmp_path / "decoded_image.png"
    r = CliRunner().invoke(app, ["decode", str(src), str(out)])
    assert r.exit_code == 0
    assert r.stdout.strip() == f"Image successfully decoded and saved as '{out}'."
    assert out.read_bytes() == PNG


def test_decode_errors_say_what_the_tutorial_says(tmp_path):
    runner = CliRunner()
    missing = tmp_path / "nope.json"
    r = runner.invoke(app, ["decode", str(missing), str(tmp_path / "x.png")])
    assert r.exit_code == 1
    assert f"File '{missing}' not found." in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = runner.invoke(app, ["decode", str(bad), str(tmp_path / "x.png")])
    assert r.exit_code == 1 and f"Invalid JSON format in '{bad}'." in r.stdout
    shape = tmp_path / "shape.json"
    shape.write_text(json.dumps({"status": "FAILED", "error": "x"}))
    r = runner.invoke(app, ["decode", str(shape), str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "Required keys not found" in r.stdout
