"""GET /v1/endpoints/{id}/workers (RunPod's workers list) on every store: the fleet's
workers merged with the workers the store saw (started by hand too), their current jobs,
and which keys may list them."""

from __future__ import annotations

from podium.board import Phase, WorkerStatus
from podium.errors import StoreUnavailable


async def _ping(api, worker_id: str, query: str = "") -> None:
    r = await api.http.get(f"/v2/{api.ep}/ping/{worker_id}?gpu=cpu{query}", headers=api.worker())
    assert r.status_code == 200, r.text


async def _key(api, scopes: list[str], endpoints: list[str]) -> str:
    r = await api.http.post(
        "/v1/keys", json={"scopes": scopes, "endpoints": endpoints}, headers=api.auth()
    )
    assert r.status_code == 200, r.text
    return r.json()["key"]


async def _take(api, worker_id: str) -> str:
    r = await api.take(worker_id)
    assert r.status_code == 200, r.text
    return r.json()["id"]


async def _fleet(api) -> dict[str, list[str]]:
    """Workers in each state the fleet and the store know: w-busy (supervised) holds two
    jobs, hand-1 (started by hand) one. Returns the held job ids by worker."""
    for _ in range(3):
        assert (await api.run()).status_code == 200
    held = {
        "w-busy": sorted([await _take(api, "w-busy"), await _take(api, "w-busy")]),
        "hand-1": [await _take(api, "hand-1")],
    }
    await _ping(api, "w-idle")
    await _ping(api, "hand-2")
    await _ping(api, "hand-sick", "&status=unhealthy&check=cuda&reason=no%20CUDA%20device")
    await _ping(api, "w-exited")  # the fleet saw it exit after this ping: not listed
    now = api.clock.now()
    api.state.fleet.workers = {
        api.ep: [
            WorkerStatus(
                "w-busy",
                api.ep,
                Phase.READY,
                gpus=(0,),
                pid=101,
                started_at=now - 40,
                ready_at=now - 30,
                node="gpu-box-1",
            ),
            WorkerStatus("w-idle", api.ep, Phase.READY, gpus=(1,), node="gpu-box-2"),
            WorkerStatus("w-throttled", api.ep, Phase.THROTTLED, reason="no free GPU (2 busy)"),
        ]
    }
    api.state.fleet.stopped = {api.ep: {"w-exited": now + 1}}
    return held


async def test_lists_fleet_and_hand_started_workers_with_their_jobs(api):
    held = await _fleet(api)
    r = await api.http.get(f"/v1/endpoints/{api.ep}/workers", headers=api.auth())
    assert r.status_code == 200, r.text
    body = r.json()
    workers = {w["id"]: w for w in body["workers"]}
    assert [w["id"] for w in body["workers"]] == [
        "w-busy",
        "w-idle",
        "w-throttled",
        "hand-1",
        "hand-2",
        "hand-sick",
    ]
    assert {i: w["status"] for i, w in workers.items()} == {
        "w-busy": "running",
        "w-idle": "idle",
        "w-throttled": "throttled",
        "hand-1": "running",
        "hand-2": "idle",
        "hand-sick": "unhealthy",
    }
    assert body["summary"] == {
        "running": 2,
        "idle": 2,
        "initializing": 0,
        "throttled": 1,
        "unhealthy": 1,
        "total": 6,
    }
    assert body["endpointVersion"] is None
    busy = workers["w-busy"]
    assert busy["node"] == "gpu-box-1" and busy["gpus"] == [0] and busy["gpuCount"] == 1
    assert busy["jobs"] == held["w-busy"] and busy["jobCount"] == 2
    assert busy["managed"] is True and busy["phase"] == "ready" and busy["pid"] == 101
    assert busy["uptimeSeconds"] == 40 and busy["startedAt"].endswith("Z")
    assert workers["w-throttled"]["reason"] == "no free GPU (2 busy)"
    assert workers["w-throttled"]["lastSeen"] is None  # never started, never seen
    hand = workers["hand-1"]
    assert hand["managed"] is False and hand["jobs"] == held["hand-1"]
    assert hand["node"] is None and hand["gpus"] == [] and hand["lastSeen"].endswith("Z")
    assert workers["hand-sick"]["reason"] == "no CUDA device"
    # /health counts the same workers.
    health = (await api.http.get(f"/v2/{api.ep}/health", headers=api.auth())).json()["workers"]
    assert {k: health[k] for k in body["summary"] if k != "total"} == {
        k: v for k, v in body["summary"].items() if k != "total"
    }


async def test_include_workers_shows_the_same_entries(api):
    await _fleet(api)
    listed = (await api.http.get(f"/v1/endpoints/{api.ep}/workers", headers=api.auth())).json()
    one = (await api.http.get(f"/v1/endpoints/{api.ep}", headers=api.auth())).json()
    assert one["workers"] == listed["workers"]
    r = await api.http.get("/v1/endpoints?includeWorkers=true", headers=api.auth())
    [mine] = [e for e in r.json() if e["id"] == api.ep]
    assert mine["workers"] == listed["workers"]
    r = await api.http.get(f"/v1/endpoints/{api.ep}?includeWorkers=false", headers=api.auth())
    assert "workers" not in r.json()


async def test_a_worker_gone_past_its_lease_is_not_listed(api):
    await _ping(api, "hand-2")
    api.clock.advance(api.state.settings.lease_s + 1)
    r = await api.http.get(f"/v1/endpoints/{api.ep}/workers", headers=api.auth())
    assert r.json()["workers"] == [] and r.json()["summary"]["total"] == 0


async def test_which_keys_may_list_workers(api):
    held = await _fleet(api)
    url = f"/v1/endpoints/{api.ep}/workers"
    other = (
        await api.http.post("/v1/endpoints", json={"name": "other"}, headers=api.auth())
    ).json()["id"]
    # A read key on this endpoint sees the workers, but no job ids (they would let it
    # read other callers' results).
    reader = await _key(api, ["read"], [api.ep])
    r = await api.http.get(url, headers=api.auth(reader))
    assert r.status_code == 200, r.text
    busy = next(w for w in r.json()["workers"] if w["id"] == "w-busy")
    assert busy["jobs"] is None and busy["jobCount"] == 2 and busy["node"] == "gpu-box-1"
    # An admin key limited to this endpoint sees the job ids.
    admin_here = await _key(api, ["admin"], [api.ep])
    r = await api.http.get(url, headers=api.auth(admin_here))
    busy = next(w for w in r.json()["workers"] if w["id"] == "w-busy")
    assert busy["jobs"] == held["w-busy"]
    # Keys for another endpoint, and no key, may not.
    for key in (await _key(api, ["read"], [other]), await _key(api, ["admin"], [other])):
        r = await api.http.get(url, headers=api.auth(key))
        assert r.status_code == 403 and api.ep in r.json()["error"]
    r = await api.http.get(url)
    assert r.status_code == 401 and "API key" in r.json()["error"]
    # The worker token is not a client key.
    r = await api.http.get(url, headers=api.worker())
    assert r.status_code == 401


async def test_unknown_endpoint_is_404(api):
    r = await api.http.get("/v1/endpoints/nope/workers", headers=api.auth())
    assert r.status_code == 404 and "nope" in r.json()["error"]


async def test_store_failure_is_503_naming_the_cause(api, monkeypatch):
    async def unavailable(endpoint_id, alive_since):
        raise StoreUnavailable("Redis at 127.0.0.1:6379 cannot be reached: connection refused.")

    monkeypatch.setattr(api.state.store, "workers", unavailable)
    r = await api.http.get(f"/v1/endpoints/{api.ep}/workers", headers=api.auth())
    assert r.status_code == 503 and "cannot be reached" in r.json()["error"]


async def test_podium_workers_report_when_they_came_up(api):
    at = api.clock.now()
    query = f"&exec_ms={int(at * 1000) - 2500}&boot_ms={int(at * 1000) - 2000}"
    await _ping(api, "w1", query + f"&load_ms={int(at * 1000) - 500}")
    [w] = (await api.http.get(f"/v1/endpoints/{api.ep}/workers", headers=api.auth())).json()[
        "workers"
    ]
    assert w["startup"] == {
        "execAt": "2023-11-14T22:13:17.500Z",
        "bootedAt": "2023-11-14T22:13:18.000Z",
        "loadedAt": "2023-11-14T22:13:19.500Z",
    }
    # Later pings carry the same times; a bad one is refused, naming the parameter.
    r = await api.http.get(f"/v2/{api.ep}/ping/w1?gpu=cpu&load_ms=soon", headers=api.worker())
    assert r.status_code == 400 and "`load_ms`" in r.json()["error"]
    # An unhealthy report keeps them beside its reason.
    await _ping(api, "w2", query + "&load_ms=1&status=unhealthy&check=cuda&reason=gone")
    listed = (await api.http.get(f"/v1/endpoints/{api.ep}/workers", headers=api.auth())).json()
    w2 = next(w for w in listed["workers"] if w["id"] == "w2")
    assert w2["reason"] == "gone" and w2["startup"]["loadedAt"] == "1970-01-01T00:00:00.001Z"
