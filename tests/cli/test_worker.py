"""`podium worker` and `python -m podium.worker`: one declaration of the options (the
entry point's); what stops a worker before it starts (running one is e2e: tests/e2e)."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from podium.cli import app


def test_no_handler_is_a_usage_error_that_says_what_to_give():
    r = CliRunner().invoke(app, ["worker", "--gateway", "http://gw", "--endpoint", "ep"])
    assert r.exit_code == 2
    assert "podium worker: error: Give a handler as MODULE:FUNCTION" in r.output


def test_an_unknown_template_is_refused():
    r = CliRunner().invoke(
        app, ["worker", "--gateway", "http://gw", "--endpoint", "ep", "--template", "nope"]
    )
    assert r.exit_code == 2 and "the built-in one is sd15" in r.output


def test_podium_worker_help_shows_the_entry_points_options():
    r = CliRunner().invoke(app, ["worker", "--help"])
    assert r.exit_code == 0
    assert "usage: podium worker" in r.output and "--ship-logs" in r.output


def test_python_m_podium_worker_is_the_same_command():
    done = subprocess.run(
        [sys.executable, "-m", "podium.worker", "--gateway", "http://gw", "--endpoint", "ep"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "python -m podium.worker: error: Give a handler" in done.stderr
