"""/run refuses input that the endpoint's declared schema rejects (an extension)."""

from __future__ import annotations


async def _endpoint(api, **spec):
    r = await api.http.post("/v1/endpoints", json={"name": "s", **spec}, headers=api.auth())
    assert r.status_code == 200, r.text
    return r.json()


async def test_sd15_endpoint_refuses_bad_input_at_run(api):
    ep = await _endpoint(api, templateId="sd15", model="tiny", workersMax=0)
    url = f"/v2/{ep['id']}/run"
    ok = await api.http.post(url, json={"input": {"prompt": "dog"}}, headers=api.auth())
    assert ok.status_code == 200
    r = await api.http.post(
        url, json={"input": {"prompt": "dog", "width": 100, "steps": 3}}, headers=api.auth()
    )
    assert r.status_code == 400
    message = r.json()["error"]
    assert "Unexpected input. steps is not a valid input option." in message
    assert "width" in message and "multiple of 8" in message
    r = await api.http.post(url, json={"input": {"width": 64}}, headers=api.auth())
    assert r.status_code == 400 and '"prompt" is a required property' in r.json()["error"]
    health = (await api.http.get(f"/v2/{ep['id']}/health", headers=api.auth())).json()
    assert health["jobs"]["inQueue"] == 1  # only the good one was queued


async def test_custom_schema_and_invalid_schema(api):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    ep = await _endpoint(api, inputSchema=schema)
    url = f"/v2/{ep['id']}/run"
    assert (
        await api.http.post(url, json={"input": {"n": 1}}, headers=api.auth())
    ).status_code == 200
    r = await api.http.post(url, json={"input": {"n": "x"}}, headers=api.auth())
    assert r.status_code == 400 and 'n: "x" is not of type "integer"' in r.json()["error"]
    r = await api.http.post(
        "/v1/endpoints", json={"name": "b", "inputSchema": {"type": 5}}, headers=api.auth()
    )
    assert r.status_code == 400 and "not a valid JSON Schema" in r.json()["error"]


async def test_endpoint_without_schema_accepts_anything(api):
    r = await api.run({"input": {"whatever": [1, 2, 3]}})
    assert r.status_code == 200
