"""`podium serve` and `podium up` (cli/serve.py): what they refuse before starting
anything (starting a gateway is e2e: tests/e2e)."""

from __future__ import annotations

from typer.testing import CliRunner

from podium.cli import app


def test_serve_refuses_an_unknown_fleet_and_says_which_values_work(tmp_path):
    r = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), "--fleet", "k8s"])
    assert r.exit_code == 2
    said = " ".join(r.output.split())  # Rich wraps lines
    assert "must be 'local', 'ray' or 'ray://HOST:PORT', got 'k8s'" in said


def test_up_refuses_a_bad_gpu_inventory_before_starting(tmp_path):
    r = CliRunner().invoke(app, ["up", "--data-dir", str(tmp_path), "--gpus", "nonsense"])
    assert r.exit_code == 2
    assert "PODIUM_GPUS" in " ".join(r.output.split())
