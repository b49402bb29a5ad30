"""The scriptable CLI contract against a real gateway process."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from typer.testing import CliRunner

from podium.cli import app

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(gateway):
    runner = CliRunner()
    env = {"PODIUM_URL": gateway.url, "PODIUM_API_KEY": gateway.admin_key}

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=env)

    return invoke


def _serve_one(gateway, ep, output) -> threading.Thread:
    """A raw-protocol worker that answers one job (the runtime has its own tests)."""

    def loop() -> None:
        with httpx.Client(
            base_url=gateway.url, headers={"Authorization": ep["workerToken"]}, timeout=10
        ) as c:
            r = c.get(f"/v2/{ep['id']}/job-take/cli-w?hold=5")
            job = r.json()
            c.post(
                f"/v2/{ep['id']}/job-done/cli-w/{job['id']}", content=json.dumps({"output": output})
            )

    t = threading.Thread(target=loop)
    t.start()
    return t


def test_endpoints_and_keys_json_contract(cli):
    r = cli("endpoints", "create", "--name", "clitest", "--json")
    assert r.exit_code == 0, r.output
    ep = json.loads(r.stdout)
    assert ep["id"] and ep["workerToken"].startswith("pw_")
    r = cli("endpoints", "list", "--json")
    assert ep["id"] in [e["id"] for e in json.loads(r.stdout)]
    r = cli("keys", "create", "--name", "ro", "--scope", "read", "--json")
    key = json.loads(r.stdout)
    assert key["key"].startswith("pk_") and key["scopes"] == ["read"]
    r = cli("keys", "list", "--json")
    assert key["id"] in [k["id"] for k in json.loads(r.stdout)]
    r = cli("keys", "revoke", key["id"])
    assert r.exit_code == 0
    assert json.loads(cli("keys", "list", "--json").stdout)[-1]["revoked"] is True


def test_run_wait_and_status(cli, gateway):
    ep = json.loads(cli("endpoints", "create", "--name", "x", "--json").stdout)
    worker = _serve_one(gateway, ep, {"answer": 42})
    r = cli("run", ep["id"], '{"q": 1}', "--wait")
    worker.join(10)
    assert r.exit_code == 0, r.output
    final = json.loads(r.stdout)
    assert final["status"] == "COMPLETED" and final["output"] == {"answer": 42}
    r = cli("status", ep["id"], final["id"])
    assert json.loads(r.stdout)["status"] == "COMPLETED"


def test_cli_errors_exit_nonzero_with_message(cli):
    r = cli("status", "nosuchep", "nosuchjob")
    assert r.exit_code == 1 and "404" in r.output
    r = cli("run", "ep", "{bad json")
    assert r.exit_code != 0 and "not valid JSON" in r.output
