"""RunPod's REST v2 network volumes and registries (gateway/rest_v2.py), and the image,
volume and registry fields of endpoints and templates (v1, GraphQL): in-process, every
store. Running the images is e2e: tests/e2e/test_containers.py."""

from __future__ import annotations

import stat

import pytest

IMAGE = "localhost/podium-test-runpod:1"


def _error(r, status: int) -> dict:
    """RunPod's v2 ErrorResponse."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return dict(body)


async def _volume(api, **body) -> dict:
    r = await api.http.post(
        "/v2/network-volumes",
        json={"name": "models", "size": 50, "dataCenter": "local", **body},
        headers=api.auth(),
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_network_volumes_create_list_get_patch_delete(api):
    v = await _volume(api, type="HIGH_PERFORMANCE")
    assert set(v) == {"id", "name", "size", "dataCenter", "type"}
    assert v["type"] == "HIGH_PERFORMANCE"
    directory = api.state.settings.volume_root / v["id"]
    assert directory.is_dir()
    listed = (await api.http.get("/v2/network-volumes", headers=api.auth())).json()
    assert listed == {"networkVolumes": [v]}
    r = await api.http.patch(
        f"/v2/network-volumes/{v['id']}", json={"size": 100}, headers=api.auth()
    )
    assert r.status_code == 200 and r.json() == {**v, "size": 100}
    got = await api.http.get(f"/v2/network-volumes/{v['id']}", headers=api.auth())
    assert got.json()["size"] == 100
    r = await api.http.patch(
        f"/v2/network-volumes/{v['id']}", json={"size": 50}, headers=api.auth()
    )
    assert "only grows" in _error(r, 400)["detail"]
    r = await api.http.delete(f"/v2/network-volumes/{v['id']}", headers=api.auth())
    assert r.status_code == 204 and not directory.exists()
    _error(await api.http.get(f"/v2/network-volumes/{v['id']}", headers=api.auth()), 404)


@pytest.mark.parametrize(
    ("body", "entry"),
    [
        ({"name": "x", "size": 5, "dataCenter": "d"}, "$.size"),
        ({"name": "x", "size": 10}, "$.dataCenter"),
        ({"name": "x", "size": 10, "dataCenter": "d", "bogus": 1}, "$: additional properties"),
        ({"name": "", "size": 10, "dataCenter": "d"}, "$.name"),
    ],
)
async def test_bad_volume_bodies_name_each_problem(api, body, entry):
    r = await api.http.post("/v2/network-volumes", json=body, headers=api.auth())
    err = _error(r, 400)
    assert any(e.startswith(entry) for e in err["errors"]), err


async def test_names_are_unique_and_a_volume_in_use_stays(api):
    v = await _volume(api)
    r = await api.http.post(
        "/v2/network-volumes",
        json={"name": "models", "size": 10, "dataCenter": "d"},
        headers=api.auth(),
    )
    assert "exists" in _error(r, 409)["detail"]
    r = await api.http.patch(
        f"/v1/endpoints/{api.ep}", json={"networkVolumeId": v["id"]}, headers=api.auth()
    )
    assert r.status_code == 200 and r.json()["networkVolumeId"] == v["id"]
    r = await api.http.delete(f"/v2/network-volumes/{v['id']}", headers=api.auth())
    assert api.ep in _error(r, 409)["detail"]
    r = await api.http.patch(
        f"/v1/endpoints/{api.ep}", json={"networkVolumeId": "vol_nosuchvolx"}, headers=api.auth()
    )
    assert r.status_code == 400 and "names no network volume" in r.json()["error"]


async def test_a_registry_password_is_write_only_and_kept_0600(api):
    r = await api.http.post(
        "/v2/registries",
        json={"name": "ghcr", "username": "me", "password": "s3cret-password"},
        headers=api.auth(),
    )
    assert r.status_code == 201, r.text
    reg = r.json()
    assert reg == {"id": reg["id"], "name": "ghcr"}
    listed = await api.http.get("/v2/registries", headers=api.auth())
    assert listed.json() == {"registries": [reg]} and "s3cret" not in listed.text
    path = api.state.settings.data_dir / "registries" / f"{reg['id']}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and "s3cret-password" in path.read_text()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for kind in ("templates", "volumes", "registries"):  # never in the store
        assert all("s3cret" not in doc for doc in await api.state.store.list_records(kind))
    r = await api.http.post(
        "/v1/templates",
        json={"name": "private", "imageName": IMAGE, "containerRegistryAuthId": reg["id"]},
        headers=api.auth(),
    )
    assert r.status_code == 200 and r.json()["containerRegistryAuthId"] == reg["id"]
    tpl = r.json()["id"]
    r = await api.http.delete(f"/v2/registries/{reg['id']}", headers=api.auth())
    assert tpl in _error(r, 409)["detail"]
    await api.http.delete(f"/v1/templates/{tpl}", headers=api.auth())
    assert (
        await api.http.delete(f"/v2/registries/{reg['id']}", headers=api.auth())
    ).status_code == 204
    assert not path.exists()


async def test_volumes_and_registries_are_gateway_wide(api):
    limited = (
        await api.http.post(
            "/v1/keys", json={"scopes": ["admin"], "endpoints": [api.ep]}, headers=api.auth()
        )
    ).json()["key"]
    for method, path in (("GET", "/v2/network-volumes"), ("GET", "/v2/registries")):
        r = await api.http.request(method, path, headers=api.auth(limited))
        _error(r, 403)
    r = await api.http.post(
        "/v2/registries",
        json={"name": "x", "username": "u", "password": "p"},
        headers=api.auth(limited),
    )
    _error(r, 403)
    v = await _volume(api)
    for field, value in (("networkVolumeId", v["id"]), ("imageName", IMAGE)):
        r = await api.http.patch(
            f"/v1/endpoints/{api.ep}", json={field: value}, headers=api.auth(limited)
        )
        assert r.status_code == 403 and "every endpoint" in r.json()["error"], field
    assert (await api.http.get("/v2/registries")).status_code == 401


async def test_an_endpoint_or_template_with_an_image(api):
    r = await api.http.post(
        "/v1/endpoints", json={"name": "img", "imageName": IMAGE}, headers=api.auth()
    )
    assert r.status_code == 200 and r.json()["imageName"] == IMAGE, r.text
    r = await api.http.post(
        "/v1/endpoints", json={"name": "bad", "imageName": "Not An Image"}, headers=api.auth()
    )
    assert r.status_code == 400 and "not an image reference" in r.json()["error"]
    r = await api.http.post(
        "/v1/endpoints",
        json={"name": "x", "templateId": "sd15", "imageName": IMAGE},
        headers=api.auth(),
    )
    assert r.status_code == 400 and "put the image in the template" in r.json()["error"]
    r = await api.http.post(
        "/v1/templates",
        json={"name": "t", "imageName": IMAGE, "dockerStartCmd": ["python", "h.py"]},
        headers=api.auth(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["command"] == "python h.py" and r.json()["imageName"] == IMAGE


async def test_graphql_templates_may_name_only_an_image(api):
    query = (
        'mutation { saveTemplate(input: {name: "g", imageName: "runpod/base:0.6.2"}) '
        "{ id imageName dockerArgs } }"
    )
    r = await api.http.post("/graphql", json={"query": query}, headers=api.auth())
    body = r.json()
    assert "errors" not in body, body
    saved = body["data"]["saveTemplate"]
    assert saved["imageName"] == "runpod/base:0.6.2" and saved["dockerArgs"] is None


async def test_an_empty_registry_or_volume_id_is_none(api):
    """RunPod's clients send "" for no registry (the runpod SDK's create_template does)."""
    empty = {"containerRegistryAuthId": "", "networkVolumeId": ""}
    r = await api.http.post(
        "/v1/endpoints", json={"name": "e", "imageName": IMAGE, **empty}, headers=api.auth()
    )
    assert r.status_code == 200, r.text
    assert r.json()["containerRegistryAuthId"] is None and r.json()["networkVolumeId"] is None
    r = await api.http.post(
        "/v1/templates",
        json={"name": "t", "imageName": IMAGE, "containerRegistryAuthId": ""},
        headers=api.auth(),
    )
    assert r.status_code == 200 and r.json()["containerRegistryAuthId"] is None, r.text
    query = (
        'mutation { saveTemplate(input: {name: "g", imageName: "runpod/base:0.6.2", '
        'containerRegistryAuthId: ""}) { id imageName } }'
    )
    r = await api.http.post("/graphql", json={"query": query}, headers=api.auth())
    assert "errors" not in r.json(), r.json()
    r = await api.http.post(
        "/v1/endpoints",
        json={"name": "x", "imageName": IMAGE, "containerRegistryAuthId": "reg_nope"},
        headers=api.auth(),
    )
    assert r.status_code == 400 and "names no registry" in r.json()["error"]
