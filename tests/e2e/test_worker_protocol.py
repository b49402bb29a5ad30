"""Worker-protocol behaviour that only a real HTTP server shows."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_take_of_a_worker_that_disconnected_takes_nothing(gateway):
    ep = gateway.create_endpoint()
    worker = {"Authorization": ep["workerToken"]}
    # the worker gives up its long-poll after 0.3 s (client timeout), the hold is 5 s
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{gateway.url}/v2/{ep['id']}/job-take/ghost?hold=5", headers=worker, timeout=0.3)
    with gateway.client() as c:
        job = c.post(f"/v2/{ep['id']}/run", json={"input": {}}).json()
        # the gone worker's hold would have ended by now; the job must still be queued
        st = c.get(f"/v2/{ep['id']}/status/{job['id']}", params={"wait": 1500}).json()
    assert st["status"] == "IN_QUEUE"
    r = httpx.get(f"{gateway.url}/v2/{ep['id']}/job-take/w2?hold=1", headers=worker)
    assert r.json()["id"] == job["id"]
