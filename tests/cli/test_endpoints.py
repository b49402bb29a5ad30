"""`podium deploy` and `podium endpoints ...` (cli/endpoints.py)."""

from __future__ import annotations

import json


def test_deploy_prints_the_endpoint_and_a_curl_line(cli):
    r = cli("deploy", "custom", "--name", "mine", "--command", "python w.py", "--workers-max", "0")
    assert r.exit_code == 0, r.output
    ep = next(e for e in cli.api().get("/v1/endpoints").json() if e["name"] == "mine")
    assert ep["templateId"] == "custom" and ep["command"] == "python w.py"
    assert ep["id"] in r.output and "curl" in r.output


def test_deploy_json_shows_the_worker_token_once(cli):
    r = cli("deploy", "custom", "--command", "python w.py", "--workers-max", "0", "--json")
    assert r.exit_code == 0, r.output
    ep = json.loads(r.stdout)
    assert ep["workerToken"].startswith("pw_") and ep["url"].endswith(f"/v2/{ep['id']}")


def test_create_list_show_update_delete(cli):
    r = cli("endpoints", "create", "--name", "plain", "--json")
    assert r.exit_code == 0, r.output
    ep_id = json.loads(r.stdout)["id"]
    listed = json.loads(cli("endpoints", "list", "--json").stdout)
    assert [e["id"] for e in listed] == [ep_id]
    r = cli("endpoints", "update", ep_id, "--workers-max", "2", "--env", "A=1", "--env", "B=2")
    assert r.exit_code == 0, r.output
    shown = json.loads(cli("endpoints", "show", ep_id, "--json").stdout)
    assert shown["workersMax"] == 2 and shown["env"] == {"A": "1", "B": "2"}
    assert cli("endpoints", "delete", ep_id).exit_code == 0
    assert json.loads(cli("endpoints", "list", "--json").stdout) == []


def test_refusals_exit_1_with_the_gateways_reason(cli):
    ep = cli.endpoint()
    r = cli("endpoints", "update", ep["id"], "--workers-max", "101")
    assert r.exit_code == 1 and "must be at most 100" in r.stderr
    r = cli("endpoints", "show", "nosuchendpoint")
    assert r.exit_code == 1 and "does not exist" in r.stderr
    r = cli("endpoints", "list", key="pk_wrong")
    assert r.exit_code == 1 and "401" in r.stderr


def test_a_bad_env_pair_is_a_usage_error(cli):
    ep = cli.endpoint()
    r = cli("endpoints", "update", ep["id"], "--env", "NOEQUALS")
    assert r.exit_code == 2 and "KEY=VALUE" in " ".join(r.stderr.split())


def test_deploy_a_load_balancer(cli):
    r = cli(
        "deploy", "custom", "--command", "python app.py", "--type", "load_balancer",
        "--workers-max", "0",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    ep = next(e for e in cli.api().get("/v1/endpoints").json() if e["type"] == "LOAD_BALANCER")
    assert ep["scalerType"] == "REQUEST_COUNT"
    assert "load balancer" in r.output and "/ping" in r.output and "/run" not in r.output
    r = cli("endpoints", "update", ep["id"], "--type", "QUEUE")
    assert r.exit_code == 0, r.output
    assert cli.api().get(f"/v1/endpoints/{ep['id']}").json()["type"] == "QUEUE"
    r = cli("endpoints", "update", ep["id"], "--type", "BOTH")
    assert r.exit_code == 1 and "`type` must be QUEUE or LOAD_BALANCER" in r.stderr


def test_metrics_prints_the_totals_and_a_line_per_series(cli):
    ep = cli.endpoint()
    api, worker = cli.api(), cli.worker(ep["workerToken"])  # no `with`: that stops the app
    for i in range(3):
        api.post(f"/v2/{ep['id']}/run", json={"input": {"i": i}}).raise_for_status()
        job = worker.get(f"/v2/{ep['id']}/job-take/w1?hold=0").json()
        body = {"error": "no"} if i == 0 else {"output": i}
        worker.post(f"/v2/{ep['id']}/job-done/w1/{job['id']}", json=body).raise_for_status()
    r = cli("endpoints", "metrics", ep["id"], "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["totals"]["requests"]["completed"] == 2
    r = cli("endpoints", "metrics", ep["id"], "--interval", "1d", COLUMNS="200")
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if "│" in line}
    assert rows["requests"].split("│")[2].strip() == "3"
    assert rows["failed"].split("│")[2].strip() == "1"
    assert "█" in rows["requests"]  # the step that holds the jobs is the tallest
    r = cli("endpoints", "metrics", ep["id"], "--interval", "1y")
    assert r.exit_code == 1 and "1h, 6h, 1d, 1w" in r.stderr


def test_spark_draws_the_largest_value_full_and_gaps_as_spaces():
    from podium.cli.endpoints import spark

    assert spark([0, 1, 2, 4, None]) == "▁▂▄█ "
    assert spark([None, None]) == "  "
    assert spark([0, 0]) == "▁▁"
    week = [None] * 167 + [5]
    assert len(spark(week)) <= 72 and spark(week).endswith("█")
