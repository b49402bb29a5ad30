"""RunPod's REST v2 against a real `podium serve` with its fleet: an endpoint created with
`POST /v2/serverless` runs real worker processes; a change of its env is a release whose
rollout the releases route shows advancing while a job in flight completes; a worker's log
arrives as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Gateway, wait_until
from tests.e2e.test_fleet import SLEEPY, fleet_gw, fleet_home  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e


@pytest.fixture
def v2(fleet_gw: Gateway) -> Iterator[Any]:  # noqa: F811
    with fleet_gw.client(timeout=60) as c:
        created: list[str] = []
        c.created = created  # type: ignore[attr-defined]
        yield c
        for ep in created:
            c.delete(f"/v2/serverless/{ep}")


def _releases(c: Any, ep: str) -> dict[str, Any]:
    return dict(c.get(f"/v2/serverless/{ep}/releases").json())


def test_a_release_rolls_out_while_a_job_in_flight_completes(v2: Any) -> None:
    body = {
        "name": "rolling",
        "type": "QUEUE",
        "templateId": "custom",
        "args": SLEEPY,
        "env": {"FLEET_TEST_VAR": "v1"},
        "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
        "workers": {"min": 2, "max": 4, "idleTimeout": 60},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 1},
    }
    r = v2.post("/v2/serverless", json=body)
    assert r.status_code == 201, r.text
    ep = r.json()["id"]
    v2.created.append(ep)

    def ready(n: int) -> bool:
        w = v2.get(f"/v2/serverless/{ep}/workers").json()
        return sum(1 for x in w["workers"] if x["status"] in ("IDLE", "RUNNING")) >= n

    wait_until(lambda: ready(2), timeout=60, what="2 workers ready")
    job = v2.post(f"/v2/{ep}/run", json={"input": {"seconds": 4}}).json()["id"]
    wait_until(
        lambda: v2.get(f"/v2/{ep}/status/{job}").json()["status"] == "IN_PROGRESS",
        timeout=30,
        what="the job running",
    )
    r = v2.patch(f"/v2/serverless/{ep}", json={"env": {"FLEET_TEST_VAR": "v2"}})
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    seen: list[dict[str, Any]] = []

    def rolled() -> bool:
        rollout = _releases(v2, ep)["rollout"]
        seen.append(rollout)
        return rollout["workersTotal"] >= 2 and rollout["percentOnLatest"] == 100

    wait_until(rolled, timeout=90, interval=0.2, what="the rollout done")
    assert any(s["inProgress"] and 0 <= s["percentOnLatest"] < 100 for s in seen), seen
    final = wait_until(
        lambda: (s := v2.get(f"/v2/{ep}/status/{job}").json())["status"] != "IN_PROGRESS" and s,
        timeout=60,
        what="the job final",
    )
    assert final["status"] == "COMPLETED" and final["output"]["extra"] == "v1", final
    assert final.get("retries", 0) == 0  # drained: it finished on its worker
    job2 = v2.post(f"/v2/{ep}/runsync", json={"input": {"seconds": 0}}).json()
    assert job2["output"]["extra"] == "v2"
    body = _releases(v2, ep)
    assert [r["version"] for r in body["releases"]] == [2, 1]
    assert body["releases"][0]["workerCount"] >= 2 and body["endpointVersion"] == 2
    workers = v2.get(f"/v2/serverless/{ep}/workers").json()["workers"]
    live = [w for w in workers if w["status"] in ("IDLE", "RUNNING")]
    assert live and all(w["version"] == 2 and not w["isStale"] for w in live)

    # a worker's log, as Server-Sent Events (its start-up lines), without and with follow
    wid = live[0]["id"]
    r = v2.get(f"/v2/serverless/{ep}/workers/{wid}/logs", params={"follow": "false"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(b.split("data: ", 1)[1]) for b in r.text.split("\n\n") if "data: " in b]
    assert events and {e["source"] for e in events} <= {"container", "system"}
    with v2.stream("GET", f"/v2/serverless/{ep}/workers/{wid}/logs", params={"tail": 1}) as s:
        first = next(line for line in s.iter_lines() if line.startswith("data: "))
    assert json.loads(first[6:])["line"] == events[-1]["line"]
