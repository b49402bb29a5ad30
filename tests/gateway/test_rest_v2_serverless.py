"""RunPod's REST v2 for endpoints and templates (gateway/rest_v2_serverless.py), in
process, on every store: each answer is validated against the schema RunPod's published
document names for it (tests/specs/runpod-rest-v2.json, a copy of
../shared/specs/runpod-rest-v2.json: JSON Schema 2020-12 over its components)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from podium.endpoints.spec import new_endpoint_id
from podium.endpoints.v2 import RESERVED_V2_NAMES
from podium.logs.lines import LogLine

SPECS = Path(__file__).resolve().parents[1] / "specs"
DOC = json.loads((SPECS / "runpod-rest-v2.json").read_text())
EXAMPLES_FILE = SPECS / "runpod-v2-examples.json"
IMAGE = "runpod/worker-v1-vllm:v2.4.0"


def valid(body: Any, schema: str) -> Any:
    """`body` against components/schemas/<schema>; every problem in the failure."""
    validator = Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": DOC["components"]}
    )
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not problems, f"{schema}: {problems}\n{json.dumps(body, indent=1)[:3000]}"
    return body


def error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    return dict(valid(r.json(), "ErrorResponse"))


QUEUE_BODY = {
    "name": "vllm",
    "type": "QUEUE",
    "image": IMAGE,
    "args": "python handler.py",
    "env": {"MODEL_NAME": "m"},
    "gpu": {"pools": ["ADA_24", "AMPERE_80"], "count": 1, "allowedCudaVersions": ["12.4"]},
    "workers": {"min": 0, "max": 2, "idleTimeout": 30},
    "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    "dataCenterIds": ["EU-RO-1"],
    "flashboot": "FLASHBOOT",
    "timeout": 600000,
    "ports": ["8000/http"],
    "disk": 20,
}


async def _create(api, body: dict, status: int = 201) -> dict:
    r = await api.http.post("/v2/serverless", json=body, headers=api.auth())
    assert r.status_code == status, r.text
    return dict(r.json())


async def test_create_get_list_patch_delete_in_runpods_shapes(api):
    ep = valid(await _create(api, QUEUE_BODY), "Endpoint")
    assert ep["type"] == "QUEUE" and ep["image"] == IMAGE and ep["args"] == "python handler.py"
    assert ep["gpu"]["pools"] == ["ADA_24", "AMPERE_80"] and ep["gpu"]["count"] == 1
    assert ep["workers"] == {"min": 0, "max": 2, "idleTimeout": 30}
    assert ep["scaling"] == {"type": "QUEUE_DELAY", "queueDelay": 4}
    assert ep["dataCenterIds"] == ["EU-RO-1"] and ep["flashboot"] == "FLASHBOOT"
    assert ep["ports"] == ["8000/http"] and ep["disk"] == 20 and ep["timeout"] == 600000
    assert ep["requestUrls"]["run"].endswith(f"/v2/{ep['id']}/run")
    valid(ep["requestUrls"], "QueueBasedRequestUrls")
    # the same record on /v1: GPUs as Podium matches them (ADA_24 + AMPERE_80: 24 GB+)
    v1 = (await api.http.get(f"/v1/endpoints/{ep['id']}", headers=api.auth())).json()
    assert v1["imageName"] == IMAGE and v1["gpuIds"] == "24GB" and v1["flashboot"] is True
    assert v1["executionTimeoutMs"] == 600000 and v1["idleTimeout"] == 30
    got = (await api.http.get(f"/v2/serverless/{ep['id']}", headers=api.auth())).json()
    assert valid(got, "Endpoint") == ep
    listed = (await api.http.get("/v2/serverless", headers=api.auth())).json()
    valid(listed, "ListEndpointsResponse")
    assert ep["id"] in [e["id"] for e in listed["endpoints"]]
    r = await api.http.patch(
        f"/v2/serverless/{ep['id']}",
        json={"workers": {"max": 3}, "scaling": {"type": "REQUEST_COUNT", "requestCount": 2}},
        headers=api.auth(),
    )
    patched = valid(r.json(), "Endpoint")
    assert patched["workers"]["max"] == 3 and patched["workers"]["min"] == 0
    assert patched["scaling"] == {"type": "REQUEST_COUNT", "requestCount": 2}
    assert patched["gpu"]["allowedCudaVersions"] == ["12.4"]  # kept
    r = await api.http.delete(f"/v2/serverless/{ep['id']}", headers=api.auth())
    assert r.status_code == 204 and r.content == b""
    error(await api.http.get(f"/v2/serverless/{ep['id']}", headers=api.auth()), 404)


async def test_every_v1_endpoint_is_shown_in_v2s_shape(api):
    """What /v1 (or `podium up`) made: a bare endpoint, a CPU command, a load balancer."""
    for body in (
        {"name": "bare"},
        {"name": "cpu", "templateId": "custom", "command": "python w.py", "gpuCount": 0},
        {"name": "lb", "type": "LOAD_BALANCER", "templateId": "custom", "command": "python a.py"},
        {"name": "sd", "templateId": "sd15", "idleTimeout": 0, "gpuIds": "0,1"},
    ):
        r = await api.http.post("/v1/endpoints", json=body, headers=api.auth())
        assert r.status_code == 200, r.text
    listed = (await api.http.get("/v2/serverless", headers=api.auth())).json()
    valid(listed, "ListEndpointsResponse")
    by_name = {e["name"]: e for e in listed["endpoints"]}
    assert by_name["cpu"]["gpu"] is None and by_name["cpu"]["cpu"]
    valid(by_name["lb"]["requestUrls"], "LoadBalancingRequestUrls")
    assert by_name["lb"]["requestUrls"]["health"].endswith("/ping")


async def test_a_load_balancer_and_its_scaling(api):
    body = {**QUEUE_BODY, "name": "lb", "type": "LOAD_BALANCER"}
    err = error(await api.http.post("/v2/serverless", json=body, headers=api.auth()), 400)
    assert "REQUEST_COUNT" in err["detail"]
    body["scaling"] = {"type": "REQUEST_COUNT", "requestCount": 4}
    ep = valid(await _create(api, body), "Endpoint")
    assert ep["type"] == "LOAD_BALANCER"
    assert set(ep["requestUrls"]) == {"base", "health"}


@pytest.mark.parametrize(
    ("body", "entry"),
    [
        ({**QUEUE_BODY, "bogus": 1}, "$: additional properties 'bogus' not allowed"),
        (
            {**QUEUE_BODY, "gpu": {"pools": ["ADA_24"], "bogus": True}},
            "$.gpu: additional properties 'bogus' not allowed",
        ),
        ({**QUEUE_BODY, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 0.1}}, "queueDelay"),
        ({**QUEUE_BODY, "workers": {"idleTimeout": 0}}, "idleTimeout"),
        ({**QUEUE_BODY, "gpu": {"pools": []}}, "pools"),
        ({**QUEUE_BODY, "flashboot": "ON"}, "flashboot"),
        ({**QUEUE_BODY, "gpu": {"pools": ["ADA_24"] * 101}}, "pools"),  # records stay small
        # found by the fuzz (tests/e2e/test_fuzz.py): an explicit null was a 500
        ({**QUEUE_BODY, "gpu": {"pools": None}}, "`$.gpu.pools` cannot be null"),
        ({**QUEUE_BODY, "env": None, "workers": None}, "`$.env`, `$.workers` cannot be null"),
        ({k: v for k, v in QUEUE_BODY.items() if k != "type"}, "type"),
        ({k: v for k, v in QUEUE_BODY.items() if k != "scaling"}, "scaling"),
    ],
)
async def test_bad_bodies_are_refused_naming_the_field(api, body, entry):
    err = error(await api.http.post("/v2/serverless", json=body, headers=api.auth()), 400)
    assert any(entry in e for e in err.get("errors", [])) or entry in err["detail"], err


async def test_more_refusals(api):
    no_image = {k: v for k, v in QUEUE_BODY.items() if k != "image"}
    err = error(await api.http.post("/v2/serverless", json=no_image, headers=api.auth()), 400)
    assert "`templateId` or `image`" in err["detail"]
    two = {**QUEUE_BODY, "networkVolumes": ["a", "b"]}
    err = error(await api.http.post("/v2/serverless", json=two, headers=api.auth()), 400)
    assert "one network volume" in err["detail"]
    missing = {**QUEUE_BODY, "networkVolumes": ["nv_nope"]}
    error(await api.http.post("/v2/serverless", json=missing, headers=api.auth()), 400)
    error(await api.http.patch("/v2/serverless/nosuch", json={}, headers=api.auth()), 404)
    error(await api.http.get("/v2/serverless", headers={}), 401)


async def test_a_key_limited_to_some_endpoints_sees_and_changes_only_those(api):
    mine = await _create(api, {**QUEUE_BODY, "name": "mine"})
    other = await _create(api, {**QUEUE_BODY, "name": "other"})
    r = await api.http.post(
        "/v1/keys",
        json={"name": "ops", "scopes": ["admin", "read", "run"], "endpoints": [mine["id"]]},
        headers=api.auth(),
    )
    limited = {"Authorization": f"Bearer {r.json()['key']}"}
    listed = (await api.http.get("/v2/serverless", headers=limited)).json()
    assert [e["id"] for e in valid(listed, "ListEndpointsResponse")["endpoints"]] == [mine["id"]]
    error(await api.http.get(f"/v2/serverless/{other['id']}", headers=limited), 403)
    r = await api.http.patch(
        f"/v2/serverless/{mine['id']}", json={"workers": {"max": 1}}, headers=limited
    )
    assert r.status_code == 200, r.text
    err = error(
        await api.http.patch(
            f"/v2/serverless/{mine['id']}", json={"image": "evil:1"}, headers=limited
        ),
        403,
    )
    assert "image" in err["detail"]
    error(await api.http.post("/v2/serverless", json=QUEUE_BODY, headers=limited), 403)
    error(await api.http.get("/v2/templates", headers=limited), 403)
    r = await api.http.post("/v1/keys", json={"name": "ro", "scopes": ["read"]}, headers=api.auth())
    error(
        await api.http.get(
            "/v2/serverless", headers={"Authorization": f"Bearer {r.json()['key']}"}
        ),
        403,
    )


async def test_templates_in_runpods_shapes_one_catalog_with_v1(api):
    body = {
        "name": "worker",
        "image": IMAGE,
        "args": "python -u handler.py",
        "env": {"A": "1"},
        "ports": ["8888/http"],
        "disk": 10,
        "serverless": True,
        "category": "NVIDIA",
        "mounts": {"persistent": {"size": 20, "path": "/workspace"}},
    }
    r = await api.http.post("/v2/templates", json=body, headers=api.auth())
    assert r.status_code == 201, r.text
    tpl = valid(r.json(), "Template")
    assert tpl["image"] == IMAGE and tpl["args"] == "python -u handler.py" and tpl["disk"] == 10
    v1 = (await api.http.get(f"/v1/templates/{tpl['id']}", headers=api.auth())).json()
    assert v1["imageName"] == IMAGE and v1["command"] == "python -u handler.py"
    listed = (await api.http.get("/v2/templates", headers=api.auth())).json()
    assert [t["id"] for t in valid(listed, "ListTemplatesResponse")["templates"]] == [tpl["id"]]
    ep = await _create(
        api,
        {
            "name": "from-template",
            "type": "QUEUE",
            "templateId": tpl["id"],
            "scaling": {"type": "QUEUE_DELAY", "queueDelay": 2},
        },
    )
    assert valid(ep, "Endpoint")["image"] == IMAGE and ep["templateId"] == tpl["id"]
    r = await api.http.patch(
        f"/v2/templates/{tpl['id']}", json={"env": {"A": "2"}}, headers=api.auth()
    )
    assert valid(r.json(), "Template")["env"] == {"A": "2"}
    releases = await api.http.get(f"/v2/serverless/{ep['id']}/releases", headers=api.auth())
    assert releases.json()["endpointVersion"] == 2  # the template's change: a release
    error(await api.http.delete(f"/v2/templates/{tpl['id']}", headers=api.auth()), 409)
    await api.http.delete(f"/v2/serverless/{ep['id']}", headers=api.auth())
    r = await api.http.delete(f"/v2/templates/{tpl['id']}", headers=api.auth())
    assert r.status_code == 204
    error(await api.http.get(f"/v2/templates/{tpl['id']}", headers=api.auth()), 404)
    err = error(await api.http.post("/v2/templates", json={"name": "x"}, headers=api.auth()), 400)
    assert "image" in err["detail"]


async def test_workers_and_releases(api):
    ep = await _create(api, QUEUE_BODY)
    r = await api.http.get(f"/v2/serverless/{ep['id']}/workers", headers=api.auth())
    body = valid(r.json(), "ListEndpointWorkersResponse")
    assert body["workers"] == [] and body["summary"]["total"] == 0
    assert body["endpointVersion"] == 1
    # a worker the store saw (started elsewhere) is listed, in RunPod's words
    await api.state.store.heartbeat(ep["id"], "w-1", [], 30.0)
    body = (await api.http.get(f"/v2/serverless/{ep['id']}/workers", headers=api.auth())).json()
    (worker,) = valid(body, "ListEndpointWorkersResponse")["workers"]
    assert worker["id"] == "w-1" and worker["status"] == "IDLE" and worker["isStale"] is False
    # what the workers run changes: a release; scaling does not
    await api.http.patch(
        f"/v2/serverless/{ep['id']}", json={"workers": {"max": 1}}, headers=api.auth()
    )
    await api.http.patch(
        f"/v2/serverless/{ep['id']}", json={"env": {"MODEL_NAME": "n"}}, headers=api.auth()
    )
    r = await api.http.get(f"/v2/serverless/{ep['id']}/releases", headers=api.auth())
    body = valid(r.json(), "ListEndpointReleasesResponse")
    assert body["endpointVersion"] == 2
    assert [rel["version"] for rel in body["releases"]] == [2, 1]
    (change,) = body["releases"][0]["diff"]
    assert change == {"field": "env", "old": {"MODEL_NAME": "m"}, "new": {"MODEL_NAME": "n"}}
    assert body["rollout"] == {
        "inProgress": False,
        "workersOnLatest": 0,
        "workersTotal": 0,
        "percentOnLatest": 100,
    }


async def test_a_workers_log_as_server_sent_events(api):
    ep = await _create(api, QUEUE_BODY)
    now = api.clock.now()
    lines = [LogLine(now, "loading"), LogLine(now, "--- podium: worker w-1 exited ---")]
    await api.state.store.logs.append(ep["id"], "w-1", lines, api.state.settings.log_budget)
    r = await api.http.get(
        f"/v2/serverless/{ep['id']}/workers/w-1/logs",
        params={"follow": "false"},
        headers=api.auth(),
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [
        json.loads(block.split("data: ", 1)[1])
        for block in r.text.strip().split("\n\n")
        if "data: " in block
    ]
    assert [(e["source"], e["line"]) for e in events] == [
        ("container", "loading"),
        ("system", "--- podium: worker w-1 exited ---"),
    ]
    assert all(e["ts"].endswith("Z") for e in events)
    for bad in ("9" * 40, "x1"):  # past SQLite's 64-bit integers: a 400, not a broken stream
        r = await api.http.get(
            f"/v2/serverless/{ep['id']}/workers/w-1/logs",
            params={"follow": "false"},
            headers={**api.auth(), "Last-Event-ID": bad},
        )
        error(r, 400)


@pytest.mark.parametrize("name", sorted(RESERVED_V2_NAMES))
async def test_no_endpoint_id_meets_a_v2_resource(api, name):
    assert all(new_endpoint_id() not in RESERVED_V2_NAMES for _ in range(1000))
    assert all(len(new_endpoint_id()) != len(n) for n in RESERVED_V2_NAMES)
    r = await api.http.post(f"/v2/{name}/run", json={"input": {}}, headers=api.auth())
    assert r.status_code in (404, 405) and "id" not in r.json()  # never a job
    r = await api.http.get(f"/v2/{name}", headers=api.auth())
    assert r.status_code in (200, 404, 405)


async def test_runpods_own_example_bodies_are_accepted(api):
    examples = json.loads(EXAMPLES_FILE.read_text())
    for body in examples.get("createTemplate", []):
        r = await api.http.post("/v2/templates", json=body, headers=api.auth())
        assert r.status_code == 201, (body, r.text)
        tpl = valid(r.json(), "Template")
        for update in examples.get("updateTemplate", []):
            r = await api.http.patch(f"/v2/templates/{tpl['id']}", json=update, headers=api.auth())
            assert r.status_code == 200, (update, r.text)
            valid(r.json(), "Template")
    for body in examples.get("createEndpoint", []):
        r = await api.http.post("/v2/serverless", json=body, headers=api.auth())
        assert r.status_code == 201, (body, r.text)
        ep = valid(r.json(), "Endpoint")
        for update in examples.get("updateEndpoint", []):
            r = await api.http.patch(f"/v2/serverless/{ep['id']}", json=update, headers=api.auth())
            assert r.status_code == 200, (update, r.text)
            valid(r.json(), "Endpoint")
