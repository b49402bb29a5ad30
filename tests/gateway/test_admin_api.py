"""The admin API for endpoints, templates and GPUs (in-process, every store); worker logs:
tests/gateway/test_logs_api.py."""

from __future__ import annotations

from podium.board import Gpu, Inventory, Phase, WorkerStatus
from podium.keys import derive_worker_token

HANDLER = "python -m podium.worker handler.py:handler"


async def _create(api, **body):
    return await api.http.post("/v1/endpoints", json={"name": "fleet", **body}, headers=api.auth())


async def test_create_with_worker_settings_and_defaults(api):
    r = await _create(api, templateId="sd15", model="tiny", gpuIds="24GB", workersMax=2)
    assert r.status_code == 200, r.text
    ep = r.json()
    assert ep["workerToken"].startswith("pw_") and ep["url"].endswith(f"/v2/{ep['id']}")
    got = (await api.http.get(f"/v1/endpoints/{ep['id']}", headers=api.auth())).json()
    expected = {
        "name": "fleet",
        "templateId": "sd15",
        "model": "tiny",
        "command": None,
        "workersMin": 0,
        "workersMax": 2,
        "idleTimeout": 5.0,
        "scalerType": "QUEUE_DELAY",
        "scalerValue": 4.0,
        "gpuIds": "24GB",
        "gpuCount": 1,
        "flashboot": False,
        "env": {},
        "executionTimeoutMs": 600000,
        "retryLimit": 2,
        "workers": [],
    }
    assert {k: got[k] for k in expected} == expected


async def test_an_endpoint_without_template_has_no_managed_workers(api):
    assert api.endpoint["templateId"] is None


async def test_validation_names_every_problem_at_once(api):
    r = await _create(
        api,
        templateId="nope",
        workersMin=4,
        workersMax=2,
        scalerType="FAST",
        idleTimeout=-1,
        gpuIds="lots!",
        env={"RUNPOD_AI_API_KEY": "x", "1X": "y"},
    )
    assert r.status_code == 400
    msg = r.json()["error"]
    assert msg.startswith("Invalid endpoint: ")
    for part in (
        "unknown `templateId` 'nope'",
        "`workersMin` (4) must not exceed `workersMax` (2)",
        "`scalerType` must be QUEUE_DELAY or REQUEST_COUNT, got 'FAST'",
        "`idleTimeout` must be 0 or more seconds, got -1",
        "`gpuIds` must list GPU indices",
        "invalid variable names: 1X",
        "may not set RUNPOD_AI_API_KEY",
    ):
        assert part in msg, (part, msg)


async def test_validation_of_template_specific_settings(api):
    r = await _create(api, templateId="custom")
    assert r.status_code == 400 and "`command` is required with templateId custom" in r.text
    r = await _create(api, templateId="sd15", command="python x.py")
    assert r.status_code == 400 and "`command` is only for templateId custom" in r.text
    r = await _create(api, templateId="custom", command=HANDLER, model="tiny")
    assert r.status_code == 400 and "`model` is only for templateId sd15" in r.text
    r = await _create(
        api, templateId="custom", command=HANDLER, scalerType="REQUEST_COUNT", scalerValue=0
    )
    assert r.status_code == 400 and "`scalerValue` must be at least 1" in r.text
    r = await _create(api, templateId="custom", command="python 'unclosed")
    assert r.status_code == 400 and "cannot be split" in r.text
    r = await _create(api, templateId="custom", command=HANDLER, gpuIds="0", gpuCount=2)
    assert r.status_code == 400 and "`gpuCount` 2 needs" in r.text
    r = await _create(api, templateId="custom", command=HANDLER, workersMin="many")
    assert r.status_code == 400 and "workersMin" in r.text


async def test_patch_updates_settings(api):
    ep = (await _create(api, templateId="custom", command=HANDLER)).json()
    r = await api.http.patch(
        f"/v1/endpoints/{ep['id']}",
        headers=api.auth(),
        json={
            "workersMax": 5,
            "idleTimeout": 1,
            "env": {"A": "1"},
            "scalerType": "REQUEST_COUNT",
            "scalerValue": 2,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["workersMax"], body["idleTimeout"], body["env"]) == (5, 1.0, {"A": "1"})
    assert body["command"] == HANDLER and body["name"] == "fleet"
    stored = await api.state.store.get_endpoint(ep["id"])
    assert stored is not None and stored.spec.workers_max == 5
    # the endpoint's worker token is unchanged by an update
    assert (
        stored.worker_token_hash == (await api.state.store.get_endpoint(ep["id"])).worker_token_hash
    )


async def test_patch_validation_leaves_the_endpoint_unchanged(api):
    ep = (await _create(api, templateId="custom", command=HANDLER, workersMax=2)).json()
    r = await api.http.patch(
        f"/v1/endpoints/{ep['id']}", headers=api.auth(), json={"workersMin": 3, "scalerType": "x"}
    )
    assert r.status_code == 400
    assert "`workersMin` (3) must not exceed `workersMax` (2)" in r.text and "scalerType" in r.text
    r = await api.http.patch(
        f"/v1/endpoints/{ep['id']}", headers=api.auth(), json={"workersMax": None}
    )
    assert r.status_code == 400 and "workersMax cannot be null" in r.text
    r = await api.http.patch(f"/v1/endpoints/{ep['id']}", headers=api.auth(), json={"x": 1})
    assert r.status_code == 400 and "x" in r.text
    got = (await api.http.get(f"/v1/endpoints/{ep['id']}", headers=api.auth())).json()
    assert got["workersMin"] == 0 and got["scalerType"] == "QUEUE_DELAY"
    r = await api.http.patch("/v1/endpoints/nope", headers=api.auth(), json={"workersMax": 1})
    assert r.status_code == 404


async def test_patch_template_switch_drops_the_old_templates_settings(api):
    ep = (await _create(api, templateId="custom", command=HANDLER)).json()
    r = await api.http.patch(
        f"/v1/endpoints/{ep['id']}",
        headers=api.auth(),
        json={"templateId": "sd15", "model": "tiny"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["command"], r.json()["model"]) == (None, "tiny")
    r = await api.http.patch(
        f"/v1/endpoints/{ep['id']}", headers=api.auth(), json={"templateId": None}
    )
    assert r.status_code == 200 and r.json()["templateId"] is None


async def test_delete_refuses_new_jobs_with_404(api):
    ep = (await _create(api, templateId="custom", command=HANDLER)).json()
    r = await api.http.delete(f"/v1/endpoints/{ep['id']}", headers=api.auth())
    assert r.json() == {"id": ep["id"], "deleted": True}
    r = await api.http.post(f"/v2/{ep['id']}/run", json={"input": {}}, headers=api.auth())
    assert r.status_code == 404
    assert (await api.http.get(f"/v1/endpoints/{ep['id']}", headers=api.auth())).status_code == 404
    r = await api.http.delete(f"/v1/endpoints/{ep['id']}", headers=api.auth())
    assert r.status_code == 404


async def test_admin_scope_is_needed(api):
    key = (await api.http.post("/v1/keys", json={"scopes": ["run"]}, headers=api.auth())).json()
    for method, path in (
        ("GET", "/v1/templates"),
        ("GET", "/v1/gpus"),
        ("PATCH", f"/v1/endpoints/{api.ep}"),
        ("GET", f"/v1/endpoints/{api.ep}/logs"),
    ):
        r = await api.http.request(method, path, json={}, headers=api.auth(key["key"]))
        assert r.status_code == 403, (method, path)


async def test_templates_builtin_create_use_delete(api):
    listed = (await api.http.get("/v1/templates", headers=api.auth())).json()
    assert [t["id"] for t in listed] == ["sd15", "custom"]
    assert all(t["builtin"] for t in listed)
    r = await api.http.post(
        "/v1/templates",
        headers=api.auth(),
        json={"name": "echo", "command": HANDLER, "env": {"K": "v"}},
    )
    assert r.status_code == 200, r.text
    tpl = r.json()
    assert tpl["id"].startswith("tpl_") and tpl["env"] == {"K": "v"} and not tpl["builtin"]
    got = (await api.http.get(f"/v1/templates/{tpl['id']}", headers=api.auth())).json()
    assert got == tpl
    r = await api.http.post(
        "/v1/templates", headers=api.auth(), json={"name": "echo", "command": "x"}
    )
    assert r.status_code == 409 and "exists" in r.text
    r = await api.http.post(
        "/v1/templates",
        headers=api.auth(),
        json={"name": "bad", "command": " ", "env": {"CUDA_VISIBLE_DEVICES": "0"}},
    )
    assert r.status_code == 400 and "`command` is required" in r.text
    assert "CUDA_VISIBLE_DEVICES" in r.text
    ep = (await _create(api, templateId=tpl["id"])).json()
    assert ep["templateId"] == tpl["id"]
    r = await api.http.delete(f"/v1/templates/{tpl['id']}", headers=api.auth())
    assert r.status_code == 409 and ep["id"] in r.text
    await api.http.delete(f"/v1/endpoints/{ep['id']}", headers=api.auth())
    r = await api.http.delete(f"/v1/templates/{tpl['id']}", headers=api.auth())
    assert r.status_code == 200
    assert (await api.http.get(f"/v1/templates/{tpl['id']}", headers=api.auth())).status_code == 404
    listed = (await api.http.get("/v1/templates", headers=api.auth())).json()
    assert [t["id"] for t in listed] == ["sd15", "custom"]
    r = await _create(api, templateId=tpl["id"])
    assert r.status_code == 400 and "unknown `templateId`" in r.text
    r = await api.http.delete("/v1/templates/sd15", headers=api.auth())
    assert r.status_code == 400 and "built-in" in r.text


async def test_the_supervisors_derived_token_works_on_its_endpoint_only(api):
    assert api.state.fleet_secret
    token = derive_worker_token(api.state.fleet_secret, api.ep)
    await api.run()
    r = await api.http.get(f"/v2/{api.ep}/job-take/sup-w?hold=0", headers={"Authorization": token})
    assert r.status_code == 200 and r.json()["input"] == {"x": 1}
    other = (await _create(api)).json()
    r = await api.http.get(
        f"/v2/{other['id']}/job-take/sup-w?hold=0", headers={"Authorization": token}
    )
    assert r.status_code == 401
    forged = derive_worker_token("not-the-secret", api.ep)
    r = await api.http.get(f"/v2/{api.ep}/job-take/sup-w?hold=0", headers={"Authorization": forged})
    assert r.status_code == 401


async def test_gpus_lists_the_inventory_and_holders(api):
    gpus = (Gpu(0, "Fake", 24564, "h1"), Gpu(1, "Fake", 24564, "h1"), Gpu(0, "Fake", 1, "h2"))
    api.state.fleet.inventory = Inventory(gpus, "config")
    api.state.fleet.workers = {
        api.ep: [WorkerStatus("w1", api.ep, Phase.READY, gpus=(1,), node="h1")]
    }
    body = (await api.http.get("/v1/gpus", headers=api.auth())).json()
    assert body["gpus"] == [
        {"index": 0, "name": "Fake", "memoryMb": 24564, "node": "h1", "worker": None},
        {"index": 1, "name": "Fake", "memoryMb": 24564, "node": "h1", "worker": "w1"},
        {"index": 0, "name": "Fake", "memoryMb": 1, "node": "h2", "worker": None},
    ]
    assert body["source"] == "config" and body["warning"] is None


async def test_health_merges_supervisor_phases_with_worker_records(api):
    ep = api.ep
    await api.run()
    await api.take("w-running")  # holds a job
    await api.http.get(f"/v2/{ep}/ping/w-idle?gpu=cpu", headers=api.worker())
    await api.http.get(f"/v2/{ep}/ping/w-external?gpu=cpu", headers=api.worker())
    await api.http.get(f"/v2/{ep}/ping/w-restarting?gpu=cpu", headers=api.worker())
    api.state.fleet.workers = {
        ep: [
            WorkerStatus("w-running", ep, Phase.READY),
            WorkerStatus("w-idle", ep, Phase.READY),
            WorkerStatus("w-starting", ep, Phase.STARTING),
            WorkerStatus("w-restarting", ep, Phase.BACKOFF),  # its old record is still alive
            WorkerStatus("w-throttled", ep, Phase.THROTTLED),
            WorkerStatus("w-unhealthy", ep, Phase.UNHEALTHY),
        ]
    }
    r = await api.http.get(f"/v2/{ep}/health", headers=api.auth())
    assert r.json()["workers"] == {
        "idle": 2,
        "initializing": 2,
        "ready": 3,
        "running": 1,
        "throttled": 1,
        "unhealthy": 1,
    }


async def test_health_forgets_workers_the_supervisor_saw_exit(api):
    ep = api.ep
    await api.http.get(f"/v2/{ep}/ping/w-gone?gpu=cpu", headers=api.worker())
    await api.http.get(f"/v2/{ep}/ping/w-back?gpu=cpu", headers=api.worker())
    api.state.fleet.stopped = {ep: {"w-gone": api.clock.now(), "w-back": api.clock.now() - 1}}
    r = await api.http.get(f"/v2/{ep}/health", headers=api.auth())
    assert r.json()["workers"]["idle"] == 1  # w-back pinged after it had exited: it is back
