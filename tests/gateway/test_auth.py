"""Keys, scopes, endpoint restriction and worker tokens."""

from __future__ import annotations

import stat


async def make_key(api, scopes, endpoints=()):
    r = await api.http.post(
        "/v1/keys",
        json={"name": "k", "scopes": scopes, "endpoints": list(endpoints)},
        headers=api.auth(),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_admin_key_file_is_private(api):
    path = api.state.settings.data_dir / "admin.key"
    assert path.read_text().strip() == api.admin_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_missing_and_wrong_key(api):
    r = await api.http.post(f"/v2/{api.ep}/run", json={"input": {}})
    assert r.status_code == 401 and "Missing API key" in r.json()["error"]
    r = await api.run(key="pk_wrong")
    assert r.status_code == 401 and "Unknown" in r.json()["error"]


async def test_read_key_cannot_run_or_administer(api):
    key = (await make_key(api, ["read"]))["key"]
    r = await api.run(key=key)
    assert r.status_code == 403 and "`run` scope" in r.json()["error"]
    job = (await api.run()).json()
    r = await api.http.get(f"/v2/{api.ep}/status/{job['id']}", headers=api.auth(key))
    assert r.status_code == 200
    r = await api.http.post("/v1/endpoints", json={"name": "x"}, headers=api.auth(key))
    assert r.status_code == 403


async def test_endpoint_restricted_key(api):
    other = (await api.http.post("/v1/endpoints", json={"name": "o"}, headers=api.auth())).json()
    key = (await make_key(api, ["run"], [other["id"]]))["key"]
    assert (await api.run(key=key)).status_code == 403
    r = await api.http.post(f"/v2/{other['id']}/run", json={"input": {}}, headers=api.auth(key))
    assert r.status_code == 200


async def test_revoked_key_is_refused(api):
    created = await make_key(api, ["run"])
    assert (await api.run(key=created["key"])).status_code == 200
    listed = (await api.http.get("/v1/keys", headers=api.auth())).json()
    assert all("key" not in k and "hash" not in k for k in listed)
    await api.http.delete(f"/v1/keys/{created['id']}", headers=api.auth())
    assert (await api.run(key=created["key"])).status_code == 401


async def test_worker_token_is_bound_to_its_endpoint(api):
    other = (await api.http.post("/v1/endpoints", json={"name": "o"}, headers=api.auth())).json()
    r = await api.http.get(
        f"/v2/{other['id']}/job-take/w1?hold=0", headers={"Authorization": api.token}
    )
    assert r.status_code == 403 and "belongs to endpoint" in r.json()["error"]
    r = await api.http.get(f"/v2/{api.ep}/job-take/w1?hold=0", headers={"Authorization": "pw_nope"})
    assert r.status_code == 401
    r = await api.http.get(f"/v2/{api.ep}/job-take/w1?hold=0")
    assert r.status_code == 401
    # a client key is not a worker token
    r = await api.http.get(f"/v2/{api.ep}/job-take/w1?hold=0", headers=api.auth())
    assert r.status_code == 401
    # a worker token is not a client key
    r = await api.http.post(
        f"/v2/{api.ep}/run", json={"input": {}}, headers={"Authorization": f"Bearer {api.token}"}
    )
    assert r.status_code == 401


async def test_endpoint_validation_errors(api):
    r = await api.http.post(
        "/v1/endpoints", json={"name": "x", "executionTimeoutMs": 10}, headers=api.auth()
    )
    assert r.status_code == 400 and "executionTimeoutMs" in r.json()["error"]
    r = await api.http.post("/v1/endpoints", json={"name": "x", "bogus": 1}, headers=api.auth())
    assert r.status_code == 400 and "bogus" in r.json()["error"]
    r = await api.http.post("/v1/endpoints", content=b"{", headers=api.auth())
    assert r.status_code == 400


async def test_deleted_endpoint_refuses_jobs(api):
    await api.run()
    r = await api.http.delete(f"/v1/endpoints/{api.ep}", headers=api.auth())
    assert r.status_code == 200
    r = await api.run()
    assert r.status_code == 404


async def test_admin_key_limited_to_an_endpoint_administers_only_that_endpoint(api):
    """An admin key limited to endpoint A must not act on B nor on the whole gateway:
    no other endpoint, no new (unlimited) keys, no new endpoints, no templates."""
    mine = (await api.http.post("/v1/endpoints", json={"name": "a"}, headers=api.auth())).json()
    key = (await make_key(api, ["admin"], [mine["id"]]))["key"]
    h = api.auth(key)
    # its own endpoint: read, update, history, logs
    assert (await api.http.get(f"/v1/endpoints/{mine['id']}", headers=h)).status_code == 200
    r = await api.http.patch(f"/v1/endpoints/{mine['id']}", json={"workersMax": 2}, headers=h)
    assert r.status_code == 200, r.text
    assert (await api.http.get(f"/v1/endpoints/{mine['id']}/logs", headers=h)).status_code == 200
    # ... but not what its workers run: that runs on the fleet's machines
    for change in ({"command": "sh -c 'cat /etc/shadow'"}, {"env": {"A": "1"}}):
        r = await api.http.patch(f"/v1/endpoints/{mine['id']}", json=change, headers=h)
        assert r.status_code == 403 and "every endpoint" in r.json()["error"], r.text
    # another endpoint: neither read nor delete
    r = await api.http.get(f"/v1/endpoints/{api.ep}", headers=h)
    assert r.status_code == 403 and api.ep in r.json()["error"]
    assert (await api.http.delete(f"/v1/endpoints/{api.ep}", headers=h)).status_code == 403
    assert (await api.http.get(f"/v1/endpoints/{api.ep}", headers=api.auth())).status_code == 200
    # the whole gateway: keys, endpoints, templates, GraphQL, health details
    r = await api.http.post(
        "/v1/keys", json={"name": "x", "scopes": ["admin"], "endpoints": []}, headers=h
    )
    assert r.status_code == 403 and "every endpoint" in r.json()["error"]
    assert (await api.http.get("/v1/keys", headers=h)).status_code == 403
    assert (await api.http.get("/v1/endpoints", headers=h)).status_code == 403
    assert (await api.http.post("/v1/endpoints", json={"name": "b"}, headers=h)).status_code == 403
    assert (await api.http.get("/v1/templates", headers=h)).status_code == 403
    r = await api.http.post("/graphql", json={"query": "query { myself { id } }"}, headers=h)
    assert r.status_code == 403
    assert (await api.http.get("/healthz", headers=h)).status_code == 403
