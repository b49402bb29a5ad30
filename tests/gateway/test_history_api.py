"""GET /v2/{ep}/requests: the job history over HTTP, on both stores."""

from __future__ import annotations

import pytest

from podium.clock import iso_time


async def _key(api, scopes: list[str]) -> str:
    r = await api.http.post("/v1/keys", json={"scopes": scopes}, headers=api.auth())
    return r.json()["key"]


async def _requests(api, key: str | None = None, **params):
    return await api.http.get(f"/v2/{api.ep}/requests", params=params, headers=api.auth(key))


async def test_lists_jobs_newest_first_without_inputs_or_outputs(api):
    first = (await api.run({"input": {"secret": "in"}})).json()["id"]
    api.clock.advance(1)
    second = (await api.run({"input": {"secret": "in"}})).json()["id"]
    api.clock.advance(2)
    await api.take()  # first
    api.clock.advance(3)
    await api.done(first, {"output": {"secret": "out"}, "error": "it broke"})
    r = await _requests(api)
    assert r.status_code == 200
    body = r.json()
    assert body["nextCursor"] is None
    newest, oldest = body["requests"]
    assert newest == {
        "id": second,
        "status": "IN_QUEUE",
        "createdAt": iso_time(api.clock.now() - 5),
        "retries": 0,
    }
    assert oldest == {
        "id": first,
        "status": "FAILED",
        "createdAt": iso_time(api.clock.now() - 6),
        "delayTime": 3000,
        "executionTime": 3000,
        "error": "it broke",
        "workerId": "w1",
        "retries": 0,
    }
    assert "secret" not in r.text


async def test_pages_filters_and_the_record_after_retention(api):
    ids = []
    for _ in range(5):
        ids.append((await api.run()).json()["id"])
        api.clock.advance(1)
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = (await _requests(api, **params)).json()
        seen += [e["id"] for e in body["requests"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    await api.take()
    await api.done(ids[0], {"output": 1})
    completed = (await _requests(api, status="completed")).json()["requests"]
    assert [e["id"] for e in completed] == [ids[0]]
    window = await _requests(
        api, since=iso_time(api.clock.now() - 4), until=iso_time(api.clock.now() - 2)
    )
    assert [e["id"] for e in window.json()["requests"]] == [ids[2], ids[1]]
    ms = int((api.clock.now() - 4) * 1000)
    by_ms = await _requests(api, since=str(ms), until=str(ms + 2000))
    assert by_ms.json() == window.json()
    api.clock.advance(31 * 60)  # past /run's retention
    await api.reap()
    assert (await api.status(ids[0])).status_code == 404
    completed_later = (await _requests(api, status="COMPLETED")).json()["requests"]
    assert completed_later == completed  # the record outlives the data


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"status": "DONE"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"until": "9" * 400}, "until"),
        ({"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "until"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "bmFufGFiYw"}, "cursor"),  # "nan|abc"
    ],
)
async def test_bad_parameters_answer_400_naming_them(api, params, needle):
    r = await _requests(api, **params)
    assert r.status_code == 400
    assert needle in r.json()["error"]


async def test_admin_only_and_endpoint_must_exist(api):
    for scopes in (["read"], ["run"]):
        r = await _requests(api, await _key(api, scopes))
        assert r.status_code == 403 and "admin" in r.json()["error"]
    r = await api.http.get("/v2/nope/requests", headers=api.auth())
    assert r.status_code == 404
    r = await api.http.get(f"/v2/{api.ep}/requests")
    assert r.status_code == 401


async def test_rate_limited_like_runpod(api):
    for _ in range(10):
        assert (await _requests(api)).status_code == 200
    r = await _requests(api)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    api.clock.advance(10)
    assert (await _requests(api)).status_code == 200
