"""kill -9 of the gateway: every job that /run acknowledged is there after a restart."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e


def test_acknowledged_jobs_survive_kill_9(gateway):
    ep = gateway.create_endpoint()
    acked: list[str] = []
    stop = threading.Event()

    def submit_loop() -> None:
        with gateway.client() as c:
            for i in range(2000):  # bounded
                if stop.is_set():
                    return
                try:
                    r = c.post(f"/v2/{ep['id']}/run", json={"input": {"i": i}}, timeout=5)
                except httpx.HTTPError:
                    return  # the gateway died mid-request: not acknowledged
                if r.status_code == 200:
                    acked.append(r.json()["id"])

    threads = [threading.Thread(target=submit_loop) for _ in range(4)]
    for t in threads:
        t.start()
    # kill it while submissions are in flight
    wait_until(lambda: len(acked) >= 100, timeout=20, what="100 acknowledged jobs")
    gateway.kill9()
    stop.set()
    for t in threads:
        t.join(10)
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
