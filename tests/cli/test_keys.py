"""`podium keys ...` (cli/keys.py)."""

from __future__ import annotations

import json


def test_create_list_revoke(cli):
    ep = cli.endpoint()
    r = cli("keys", "create", "--name", "app", "--scope", "run", "--endpoint", ep["id"], "--json")
    assert r.exit_code == 0, r.output
    key = json.loads(r.stdout)
    assert key["scopes"] == ["run"] and key["endpoints"] == [ep["id"]]
    assert cli.api(key["key"]).get(f"/v2/{ep['id']}/health").status_code == 200
    listed = json.loads(cli("keys", "list", "--json").stdout)
    assert {k["name"] for k in listed} == {"admin", "app"}
    assert all("hash" not in k and "key" not in k for k in listed)
    assert cli("keys", "revoke", key["id"]).exit_code == 0
    assert cli.api(key["key"]).get(f"/v2/{ep['id']}/health").status_code == 401


def test_the_plain_output_shows_the_key_once_on_stdout(cli):
    r = cli("keys", "create", "--scope", "read")
    assert r.exit_code == 0
    assert r.stdout.strip().startswith("pk_") and "shown once" in r.stderr


def test_a_run_key_cannot_manage_keys(cli):
    run_key = json.loads(cli("keys", "create", "--scope", "run", "--json").stdout)["key"]
    r = cli("keys", "list", key=run_key)
    assert r.exit_code == 1 and "403" in r.stderr
