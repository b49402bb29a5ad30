"""Worker logs over HTTP, in-process on both stores: a worker ships
(POST /v2/{ep}/worker-logs/{worker}) and an admin reads (GET /v1/endpoints/{ep}/logs).
Following (`follow=true`, a stream that never ends by itself) is tested against a real
server in tests/e2e/test_worker_logs.py."""

from __future__ import annotations

from podium.logs.lines import BATCH_MAX_LINES, LINE_MAX_BYTES


async def ship(api, lines, worker="w1", dropped=0, headers=None, ep=None):
    body = {"lines": lines, "dropped": dropped}
    return await api.http.post(
        f"/v2/{ep or api.ep}/worker-logs/{worker}",
        json=body,
        headers=api.worker() if headers is None else headers,
    )


async def read(api, key=None, ep=None, **params):
    return await api.http.get(
        f"/v1/endpoints/{ep or api.ep}/logs", params=params, headers=api.auth(key)
    )


def texts(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [ln["text"] for ln in r.json()["lines"]]


async def _key(api, scopes, endpoints=()):
    r = await api.http.post(
        "/v1/keys", json={"scopes": scopes, "endpoints": list(endpoints)}, headers=api.auth()
    )
    return r.json()["key"]


async def test_a_worker_ships_and_an_admin_reads_with_filters(api):
    r = await ship(
        api,
        [
            {"time": 1_700_000_000.5, "text": "booting"},
            {"time": 1_700_000_001, "text": "in a", "jobs": ["job-a"]},
        ],
    )
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 2
    await ship(api, [{"text": "other worker", "jobs": ["job-b"]}], worker="w2")
    r = await read(api)
    body = r.json()
    assert body["endpointId"] == api.ep
    first = body["lines"][0]
    assert first == {
        "seq": first["seq"],
        "workerId": "w1",
        "time": "2023-11-14T22:13:20.500Z",
        "text": "booting",
        "jobs": [],
    }
    assert body["cursor"] == body["lines"][-1]["seq"]
    assert texts(r) == ["booting", "in a", "other worker"]
    assert texts(await read(api, job="job-a")) == ["in a"]
    assert texts(await read(api, worker="w2")) == ["other worker"]
    assert texts(await read(api, tail=1)) == ["other worker"]
    assert texts(await read(api, since=first["seq"])) == ["in a", "other worker"]


async def test_dropped_lines_are_said_where_they_were_lost(api):
    await ship(api, [{"text": "before"}])
    await ship(api, [{"text": "after"}], dropped=12)
    got = texts(await read(api))
    assert got[0] == "before" and got[2] == "after"
    assert "12 line(s) dropped" in got[1]


async def test_long_lines_are_cut_and_the_worker_bound_holds(api, clock):
    api.state.settings.log_lines_per_worker = 5
    await ship(api, [{"text": "é" * LINE_MAX_BYTES}])
    (line,) = texts(await read(api))
    assert len(line.encode()) <= LINE_MAX_BYTES and line.endswith("…")
    await ship(api, [{"text": str(i)} for i in range(9)])
    assert texts(await read(api, tail=100)) == ["4", "5", "6", "7", "8"]


async def test_bad_batches_get_400_or_413(api):
    for body, what in [
        ([{"text": 5}], "`lines[0].text` must be a string"),
        ([{"text": "x", "jobs": "j"}], "`lines[0].jobs` must be a list"),
        ([{"text": "x", "time": "now"}], "`lines[0].time` must be epoch seconds"),
        ([{"text": "x"}] * (BATCH_MAX_LINES + 1), f"at most {BATCH_MAX_LINES} lines"),
    ]:
        r = await ship(api, body)
        assert r.status_code == 400 and what in r.json()["error"], r.text
    r = await ship(api, [{"text": "x"}], dropped=-1)
    assert r.status_code == 400 and "`dropped`" in r.json()["error"]
    r = await api.http.post(f"/v2/{api.ep}/worker-logs/w1", content=b"[1]", headers=api.worker())
    assert r.status_code == 400
    r = await ship(api, [{"text": "x" * 4000}] * 300)
    assert r.status_code == 413
    assert texts(await read(api)) == []


async def test_who_may_ship_and_who_may_read(api):
    other = (
        await api.http.post("/v1/endpoints", json={"name": "other"}, headers=api.auth())
    ).json()
    # shipping: this endpoint's worker token only
    r = await ship(api, [{"text": "x"}], headers={})
    assert r.status_code == 401
    r = await ship(api, [{"text": "x"}], headers={"Authorization": other["workerToken"]})
    assert r.status_code == 403
    r = await ship(api, [{"text": "x"}], headers=api.auth())  # an admin key is no token
    assert r.status_code == 401
    # reading: the admin scope on this endpoint
    assert (await read(api)).status_code == 200
    run_key = await _key(api, ["run"])
    assert (await read(api, key=run_key)).status_code == 403
    mine = await _key(api, ["admin"], [api.ep])
    assert (await read(api, key=mine)).status_code == 200
    theirs = await _key(api, ["admin"], [other["id"]])
    assert (await read(api, key=theirs)).status_code == 403
    r = await api.http.get(f"/v1/endpoints/{api.ep}/logs")
    assert r.status_code == 401
    assert (await read(api, ep="nope")).status_code == 404


async def test_bad_read_parameters_get_400(api):
    for params, what in [
        ({"tail": -1}, "`tail`"),
        ({"tail": 10_001}, "`tail`"),
        ({"since": "x"}, "`since`"),
        ({"job": "j" * 300}, "`job`"),
    ]:
        r = await read(api, **params)
        assert r.status_code == 400 and what in r.json()["error"], (params, r.text)


async def test_logs_go_with_the_endpoint_and_with_retention(api, clock):
    await ship(api, [{"text": "x"}])
    clock.advance(api.state.settings.log_retention_ms / 1000 - 1)
    await api.reap()
    assert texts(await read(api)) == ["x"]
    clock.advance(2)
    await api.reap()
    assert texts(await read(api)) == []
    await ship(api, [{"text": "y"}])
    r = await api.http.delete(f"/v1/endpoints/{api.ep}", headers=api.auth())
    assert r.status_code == 200
    assert (await read(api)).status_code == 404
    assert (await api.state.store.logs.read(api.ep, _all())).lines == []


def _all():
    from podium.logs.lines import LogQuery

    return LogQuery(tail=100)


async def test_hostile_inputs_on_the_routes_this_round_added_answer_4xx(api):
    """Nesting past the limit, 1e400, integers past 64 bits, a huge body, bad query numbers
    and a read key: each a 4xx with a JSON error; the other endpoint's job untouched."""
    job = (await api.run()).json()
    deep = b'{"lines": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    raw = {"Content-Type": "application/json", **api.worker()}
    for body in (
        deep,
        b'{"lines": [{"text": "x", "time": 1e400}]}',
        b'{"lines": [{"text": "x"}], "dropped": 123456789012345678901234567890}',
        b"{" + b" " * (100 * 1024 * 1024) + b"}",
    ):
        r = await api.http.post(f"/v2/{api.ep}/worker-logs/w1", content=body, headers=raw)
        assert 400 <= r.status_code < 500 and "error" in r.json(), (r.status_code, r.text[:200])
    for params in ({"tail": "1e400"}, {"tail": "9" * 400}, {"since": "inf"}, {"tail": "-1"}):
        r = await read(api, **params)
        assert r.status_code == 400 and "error" in r.json(), (params, r.text)
    # startup times on a ping: numbers that are not finite or not 64-bit are refused
    for value in ("1e400", "inf", "9" * 400):
        r = await api.http.get(
            f"/v2/{api.ep}/ping/w1?gpu=cpu&exec_ms={value}", headers=api.worker()
        )
        assert r.status_code == 400 and "error" in r.json(), (value, r.text)
    # podium_next: the same, and the job stays with its worker
    assert (await api.take()).status_code == 200
    r = await api.http.post(
        f"/v2/{api.ep}/job-done/w1/{job['id']}?gpu=cpu&podium_next=1e400",
        content=b'{"output": 1}',
        headers={**api.worker(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and "error" in r.json(), r.text
    # a read key reads neither logs nor the job ids of the workers list
    key = (
        await api.http.post("/v1/keys", json={"name": "r", "scopes": ["read"]}, headers=api.auth())
    ).json()["key"]
    assert (await read(api, key=key)).status_code == 403
    r = await api.http.get(f"/v1/endpoints/{api.ep}/workers", headers=api.auth(key))
    assert r.status_code == 200 and [w["jobs"] for w in r.json()["workers"]] == [
        None
    ]  # hidden from a read key
    r = await api.http.get(f"/v1/endpoints/{api.ep}/workers", headers=api.auth())
    assert [w["jobs"] for w in r.json()["workers"]] == [[job["id"]]]
    assert (await api.status(job["id"])).json()["status"] == "IN_PROGRESS"
