"""RunPod's REST names on /v1/endpoints and /v1/templates, and /graphql's hardening, in
process on both stores (the SDK's own calls are in tests/runpod_compat)."""

from __future__ import annotations

import re

import pytest

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CARDS = ["NVIDIA GeForce RTX 4090", "NVIDIA A40"]


async def test_endpoints_speak_runpods_rest_names(api):
    h = api.auth()
    r = await api.http.post("/v1/endpoints", json={"name": "g", "gpuTypeIds": CARDS}, headers=h)
    assert r.status_code == 200, r.text
    ep = r.json()
    assert ep["gpuTypeIds"] == CARDS and ep["gpuIds"] == ",".join(CARDS)
    assert ISO.match(ep["createdAt"])
    listed = (await api.http.get("/v1/endpoints", headers=h)).json()
    assert all(ISO.match(e["createdAt"]) and "workers" not in e for e in listed)
    r = await api.http.post(
        f"/v1/endpoints/{ep['id']}/update", json={"gpuTypeIds": ["NVIDIA L4"]}, headers=h
    )
    assert r.status_code == 200 and r.json()["gpuIds"] == "NVIDIA L4"
    r = await api.http.post(
        f"/v1/endpoints/{ep['id']}/update", json={"gpuIds": "0", "gpuTypeIds": CARDS}, headers=h
    )
    assert r.status_code == 400 and "not both" in r.json()["error"]
    r = await api.http.patch(
        f"/v1/endpoints/{ep['id']}", json={"gpuTypeIds": ["A40,L4"]}, headers=h
    )
    assert r.status_code == 400 and "gpuTypeIds" in r.json()["error"]
    r = await api.http.patch(f"/v1/endpoints/{ep['id']}", json={"gpuIds": "24GB"}, headers=h)
    assert r.json()["gpuTypeIds"] == []


async def test_include_workers_and_template(api):
    h = api.auth()
    r = await api.http.post(
        "/v1/endpoints", json={"name": "c", "templateId": "custom", "command": "true"}, headers=h
    )
    ep_id = r.json()["id"]
    one = (await api.http.get(f"/v1/endpoints/{ep_id}", headers=h)).json()
    assert one["workers"] == [] and "template" not in one
    one = (
        await api.http.get(
            f"/v1/endpoints/{ep_id}?includeWorkers=false&includeTemplate=true", headers=h
        )
    ).json()
    assert "workers" not in one and one["template"]["id"] == "custom"
    listed = (
        await api.http.get("/v1/endpoints?includeWorkers=true&includeTemplate=true", headers=h)
    ).json()
    mine = next(e for e in listed if e["id"] == ep_id)
    assert mine["workers"] == [] and mine["template"]["builtin"] is True
    none = next(e for e in listed if e["id"] == api.ep)
    assert none["template"] is None


async def test_templates_take_runpods_body(api):
    h = api.auth()
    body = {
        "name": "rp",
        "imageName": "runpod/worker:1",
        "dockerStartCmd": ["python", "handler.py", "--say", "a b"],
        "env": {"A": "1"},
        "containerDiskInGb": 20,
        "ports": ["8888/http"],
        "isServerless": True,
    }
    r = await api.http.post("/v1/templates", json=body, headers=h)
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["command"] == "python handler.py --say 'a b'"
    assert t["dockerStartCmd"] == ["python", "handler.py", "--say", "a b"]
    assert t["imageName"] == "runpod/worker:1" and ISO.match(t["createdAt"])
    r = await api.http.post(
        "/v1/templates", json={"name": "x", "command": "a", "dockerStartCmd": ["b"]}, headers=h
    )
    assert r.status_code == 400 and "not both" in r.json()["error"]
    builtins = [t for t in (await api.http.get("/v1/templates", headers=h)).json() if t["builtin"]]
    assert all(t["createdAt"] is None for t in builtins)


async def _gql(api, body, key: str | None = None, raw: bytes | None = None):
    headers = {} if key == "" else api.auth(key)
    if raw is not None:
        return await api.http.post("/graphql", content=raw, headers=headers)
    return await api.http.post("/graphql", json=body, headers=headers)


async def test_graphql_answers_the_sdks_operations(api):
    q = (
        'mutation { saveTemplate(input: {name: "t", imageName: "i", dockerArgs: "python h.py", '
        'env: [{key: "K", value: "V"}]}) { id dockerArgs env { key value } } }'
    )
    r = await _gql(api, {"query": q})
    assert r.status_code == 200, r.text
    tpl = r.json()["data"]["saveTemplate"]
    q = (
        f'mutation {{ saveEndpoint(input: {{name: "e-fb", templateId: "{tpl["id"]}", '
        'gpuIds: "ADA_24,AMPERE_48", workersMin: 0, workersMax: 2}) '
        "{ id gpuIds flashBootType workersMax } }"
    )
    ep = (await _gql(api, {"query": q})).json()["data"]["saveEndpoint"]
    assert ep["gpuIds"] == "24GB" and ep["flashBootType"] == "FLASHBOOT"
    q = "query { myself { endpoints { id name env { key } createdAt } } }"
    listed = (await _gql(api, {"query": q})).json()["data"]["myself"]["endpoints"]
    assert {e["id"] for e in listed} == {api.ep, ep["id"]}
    bad = (
        f'mutation {{ saveEndpoint(input: {{name: "b", templateId: "{tpl["id"]}", '
        'gpuIds: "AMPERE_16", workersMin: 5, workersMax: 1}) { id } }'
    )
    r = await _gql(api, {"query": bad})
    assert r.status_code == 200 and "workersMin" in r.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "raw", "status", "needle"),
    [
        (None, b"{nope", 400, "not valid JSON"),
        ({"query": ""}, None, 400, "query"),
        ({"query": "{ myself { pods { id } } }"}, None, 400, "myself { pods }"),
        ({"query": "mutation { podTerminate(input: {}) }"}, None, 400, "podTerminate"),
        ({"query": "{" * 3000 + "}" * 3000}, None, 400, "query"),
        ({"query": "{ myself { endpoints { " + "id " * 6000 + "} } }"}, None, 400, "token"),
        ({"query": "{ myself { endpoints { nope } } }"}, None, 200, "nope"),
        ({"query": "{ myself { id } }", "variables": [1]}, None, 400, "variables"),
        ({"query": "fragment f on User { id } { myself { ...f } }"}, None, 400, "fragments"),
    ],
)
async def test_graphql_refuses_everything_else(api, body, raw, status, needle):
    r = await _gql(api, body, raw=raw)
    assert r.status_code == status, r.text
    assert needle in r.json()["errors"][0]["message"]


async def test_graphql_needs_the_admin_key(api):
    q = {"query": "{ myself { endpoints { id } } }"}
    r = await _gql(api, q, key="")
    assert r.status_code == 401 and r.json()["errors"][0]["message"]
    key = (await api.http.post("/v1/keys", json={"scopes": ["run"]}, headers=api.auth())).json()
    r = await _gql(api, q, key=key["key"])
    assert r.status_code == 403 and "admin" in r.json()["errors"][0]["message"]
