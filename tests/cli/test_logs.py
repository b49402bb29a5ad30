"""`podium logs` (cli/logs.py)."""

from __future__ import annotations

import json


def test_logs_print_the_lines_oldest_first(cli):
    ep = cli.endpoint()
    worker = cli.worker(ep["workerToken"])
    lines = [{"text": "first", "jobs": ["j1"]}, {"text": "second"}]
    assert worker.post(f"/v2/{ep['id']}/worker-logs/w1", json={"lines": lines}).status_code == 200
    r = cli("logs", ep["id"])
    assert r.exit_code == 0, r.output
    assert r.stdout.index("first") < r.stdout.index("second") and "w1" in r.stdout
    as_json = json.loads(cli("logs", ep["id"], "--json").stdout)
    assert [x["text"] for x in as_json["lines"]] == ["first", "second"]
    only_job = cli("logs", ep["id"], "--job", "j1").stdout
    assert "first" in only_job and "second" not in only_job


def test_logs_of_an_unknown_endpoint_exit_1(cli):
    r = cli("logs", "nosuchendpoint")
    assert r.exit_code == 1 and "does not exist" in r.stderr
