"""GET /v1/me: the calling key, its effective scopes and the endpoints it reaches."""

from __future__ import annotations

from podium.clock import ManualClock
from podium.gateway import create_app
from podium.settings import Settings
from tests.gateway.test_auth import make_key


async def test_the_admin_key_has_every_scope_and_sees_every_endpoint(api):
    r = await api.http.get("/v1/me", headers=api.auth())
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["key"]["name"] == "admin" and me["key"]["scopes"] == ["admin"]
    assert "hash" not in me["key"] and "key" not in me["key"]
    assert me["scopes"] == ["read", "run", "admin"]
    assert me["endpoints"] == [{"id": api.ep, "name": "test", "templateId": None, "type": "QUEUE"}]
    assert me["publicUrl"] is None


async def test_a_restricted_run_key_sees_its_scopes_and_only_its_endpoints(api):
    other = (await api.http.post("/v1/endpoints", json={"name": "o"}, headers=api.auth())).json()
    key = (await make_key(api, ["run"], [other["id"]]))["key"]
    me = (await api.http.get("/v1/me", headers=api.auth(key))).json()
    assert me["scopes"] == ["read", "run"]
    assert me["key"]["endpoints"] == [other["id"]]
    assert [e["id"] for e in me["endpoints"]] == [other["id"]]


async def test_a_read_key_may_ask_who_it_is(api):
    key = (await make_key(api, ["read"]))["key"]
    me = (await api.http.get("/v1/me", headers=api.auth(key))).json()
    assert me["scopes"] == ["read"]
    assert [e["id"] for e in me["endpoints"]] == [api.ep]


async def test_missing_wrong_and_revoked_keys_get_401(api):
    assert (await api.http.get("/v1/me")).status_code == 401
    r = await api.http.get("/v1/me", headers=api.auth("pk_wrong"))
    assert r.status_code == 401 and "Unknown or revoked" in r.json()["error"]
    created = await make_key(api, ["run"])
    await api.http.delete(f"/v1/keys/{created['id']}", headers=api.auth())
    assert (await api.http.get("/v1/me", headers=api.auth(created["key"]))).status_code == 401


async def test_without_auth_everyone_is_everything(tmp_path):
    import httpx

    settings = Settings(data_dir=tmp_path / "data", insecure_no_auth=True)
    app = create_app(settings, clock=ManualClock(), run_background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            me = (await http.get("/v1/me")).json()
    assert me["key"] is None and me["scopes"] == ["read", "run", "admin"]
