"""kill -9 of the gateway: every job that /run acknowledged is there after a restart."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import kill9_while_submitting

pytestmark = pytest.mark.e2e


def test_acknowledged_jobs_survive_kill_9(gateway):
    ep = gateway.create_endpoint()
    acked = kill9_while_submitting(gateway, ep["id"], gateway.admin_key, threads=4, at_least=100)
    assert len(acked) >= 20
    gateway.start()
    with gateway.client() as c:
        statuses = [c.get(f"/v2/{ep['id']}/status/{j}").json()["status"] for j in acked]
        health = c.get(f"/v2/{ep['id']}/health").json()
    assert statuses == ["IN_QUEUE"] * len(acked)
    assert health["jobs"]["inQueue"] >= len(acked)
    # the endpoint and its worker token survived too
    r = httpx.get(
        f"{gateway.url}/v2/{ep['id']}/job-take/w1?hold=0",
        headers={"Authorization": ep["workerToken"]},
    )
    assert r.status_code == 200
    with gateway.client() as c:
        taken = c.get(f"/v2/{ep['id']}/status/{r.json()['id']}").json()
    assert taken["status"] == "IN_PROGRESS" and taken["workerId"] == "w1"
