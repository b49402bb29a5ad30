"""Client API (PROTOCOL.md §1) through the in-process app, on every store backend."""

from __future__ import annotations

import asyncio

import pytest

from podium.jobs import DEFAULT_LIMITS


async def test_run_status_roundtrip(api):
    r = await api.run({"input": {"prompt": "dog"}})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    job = r.json()
    assert job["status"] == "IN_QUEUE"
    assert len(job["id"]) == 36
    api.clock.advance(0.25)
    taken = (await api.take()).json()
    assert taken["id"] == job["id"] and taken["input"] == {"prompt": "dog"}
    api.clock.advance(1.5)
    assert (await api.done(job["id"], {"output": {"image": "x"}})).status_code == 200
    st = (await api.status(job["id"])).json()
    assert st["status"] == "COMPLETED"
    assert st["output"] == {"image": "x"}
    assert st["delayTime"] == 250
    assert st["executionTime"] == 1500
    assert st["workerId"] == "w1"
    assert "input" not in st  # privacy: inputs are not echoed


async def test_runsync_returns_result_when_done(api):
    async def worker():
        while True:
            r = await api.take(hold=0.2)
            if r.status_code == 200:
                await api.done(r.json()["id"], {"output": 42})
                return

    task = asyncio.create_task(worker())
    r = await api.http.post(f"/v2/{api.ep}/runsync", json={"input": {}}, headers=api.auth())
    await task
    body = r.json()
    assert r.status_code == 200
    assert body["id"].startswith("sync-")
    assert body["status"] == "COMPLETED" and body["output"] == 42


async def test_runsync_wait_returns_incomplete_object(api):
    r = await api.http.post(
        f"/v2/{api.ep}/runsync?wait=1000", json={"input": {}}, headers=api.auth()
    )
    assert r.status_code == 200
    assert r.json()["status"] == "IN_QUEUE"


async def test_bare_key_without_bearer_is_accepted(api):
    r = await api.http.post(
        f"/v2/{api.ep}/run", json={"input": {}}, headers={"Authorization": api.admin_key}
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"inputs": {}}', 400, 'no "input"'),
        (b'{"input": null}', 400, 'no "input"'),
        (b'{"input": {}, "policy": {"ttl": "soon"}}', 400, "policy.ttl"),
        (b'{"input": {}, "policy": {"executionTimeout": 10}}', 400, "between 5000"),
        (b'{"input": {}, "policy": {"lowPriority": "yes"}}', 400, "lowPriority"),
        (b'{"input": {}, "policy": {"priority": 1}}', 400, "Unknown policy"),
        (b'{"input": {}, "policy": 5}', 400, "policy"),
        (b'{"input": {}, "webhook": "ftp://x"}', 400, "webhook"),
    ],
)
async def test_bad_run_bodies(api, body, status, needle):
    before = await api.run()
    r = await api.http.post(
        f"/v2/{api.ep}/run",
        content=body,
        headers={**api.auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == status
    assert needle in r.json()["error"]
    # nothing else was affected
    assert (await api.status(before.json()["id"])).json()["status"] == "IN_QUEUE"
    health = (await api.http.get(f"/v2/{api.ep}/health", headers=api.auth())).json()
    assert health["jobs"]["inQueue"] == 1


async def test_raw_json_labelled_form_urlencoded_is_parsed(api):
    r = await api.http.post(
        f"/v2/{api.ep}/run",
        content=b'{"input": {"a": 1}}',
        headers={**api.auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200


async def test_body_too_large(api):
    big = b'{"input": "' + b"x" * (DEFAULT_LIMITS.body_run_bytes + 10) + b'"}'
    r = await api.http.post(f"/v2/{api.ep}/run", content=big, headers=api.auth())
    assert r.status_code == 413
    assert "limit" in r.json()["error"] or "at most" in r.json()["error"]


async def test_unknown_endpoint_and_job(api):
    r = await api.http.post("/v2/nosuchendpoint/run", json={"input": {}}, headers=api.auth())
    assert r.status_code == 404 and "nosuchendpoint" in r.json()["error"]
    r = await api.status("00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and "does not exist" in r.json()["error"]


async def test_job_of_other_endpoint_is_not_visible(api):
    other = (
        await api.http.post("/v1/endpoints", json={"name": "other"}, headers=api.auth())
    ).json()
    job = (await api.run()).json()
    r = await api.http.get(f"/v2/{other['id']}/status/{job['id']}", headers=api.auth())
    assert r.status_code == 404


async def test_stream_always_has_stream_key(api):
    job = (await api.run()).json()
    r = (await api.http.get(f"/v2/{api.ep}/stream/{job['id']}", headers=api.auth())).json()
    assert r["stream"] == [] and r["status"] == "IN_QUEUE"
    await api.take()
    for chunk in ("a", "b"):
        await api.http.post(
            f"/v2/{api.ep}/job-stream/w1/{job['id']}?isStream=false",
            content=f'{{"output": "{chunk}"}}'.encode(),
            headers=api.worker(),
        )
    r = (await api.http.get(f"/v2/{api.ep}/stream/{job['id']}", headers=api.auth())).json()
    assert r["stream"] == [{"output": "a"}, {"output": "b"}]
    r = (await api.http.get(f"/v2/{api.ep}/stream/{job['id']}", headers=api.auth())).json()
    assert r["stream"] == []


async def test_cancel_queued_job(api):
    job = (await api.run()).json()
    r = await api.http.post(f"/v2/{api.ep}/cancel/{job['id']}", headers=api.auth())
    assert r.json() == {"id": job["id"], "status": "CANCELLED"}
    assert (await api.take()).status_code == 204
    # a cancelled job ends a stream reader cleanly
    r = (await api.http.get(f"/v2/{api.ep}/stream/{job['id']}", headers=api.auth())).json()
    assert r == {"id": job["id"], "status": "CANCELLED", "retries": 0, "stream": []}


async def test_retry_failed_job_and_conflict_otherwise(api):
    job = (await api.run()).json()
    r = await api.http.post(f"/v2/{api.ep}/retry/{job['id']}", headers=api.auth())
    assert r.status_code == 409 and "only FAILED or TIMED_OUT" in r.json()["error"]
    await api.take()
    await api.done(job["id"], {"error": "boom"})
    r = await api.http.post(f"/v2/{api.ep}/retry/{job['id']}", headers=api.auth())
    assert r.json() == {"id": job["id"], "status": "IN_QUEUE"}
    st = (await api.status(job["id"])).json()
    assert st["status"] == "IN_QUEUE" and "error" not in st


async def test_purge_queue(api):
    for _ in range(3):
        await api.run()
    await api.take()
    r = await api.http.post(f"/v2/{api.ep}/purge-queue", headers=api.auth())
    assert r.json() == {"removed": 2, "status": "completed"}
    health = (await api.http.get(f"/v2/{api.ep}/health", headers=api.auth())).json()
    assert health["jobs"]["inQueue"] == 0 and health["jobs"]["inProgress"] == 1
    assert health["workers"]["running"] == 1


async def test_status_wait_long_polls_until_change(api):
    job = (await api.run()).json()

    async def later():
        await asyncio.sleep(0.1)
        await api.take()

    task = asyncio.create_task(later())
    r = await api.status(job["id"], wait=5000)
    await task
    assert r.json()["status"] == "IN_PROGRESS"


async def test_status_sync_waits_for_final(api):
    job = (await api.run()).json()

    async def later():
        await asyncio.sleep(0.05)
        await api.take()
        await asyncio.sleep(0.05)
        await api.done(job["id"], {"output": "ok"})

    task = asyncio.create_task(later())
    r = await api.http.get(f"/v2/{api.ep}/status-sync/{job['id']}?wait=5000", headers=api.auth())
    await task
    assert r.json()["status"] == "COMPLETED" and r.json()["output"] == "ok"


async def test_rate_limit_answers_429_with_retry_after(api):
    api.clock.advance(10 - api.clock.now() % 10)  # start of a window
    for _ in range(2):
        assert (
            await api.http.post(f"/v2/{api.ep}/purge-queue", headers=api.auth())
        ).status_code == 200
    r = await api.http.post(f"/v2/{api.ep}/purge-queue", headers=api.auth())
    assert r.status_code == 429
    assert r.headers["retry-after"] == "10"
    assert "Rate limit" in r.json()["error"]
    api.clock.advance(10)
    assert (await api.http.post(f"/v2/{api.ep}/purge-queue", headers=api.auth())).status_code == 200


async def test_unknown_route_and_method_are_json(api):
    r = await api.http.get("/v2/x/nothing-here", headers=api.auth())
    assert r.status_code == 404 and "error" in r.json()
    r = await api.http.get(f"/v2/{api.ep}/run", headers=api.auth())
    assert r.status_code == 405 and "error" in r.json()


async def test_openapi_docs(api):
    r = await api.http.get("/openapi.json")
    assert r.status_code == 200
    assert "/v2/{endpoint_id}/run" in r.json()["paths"]
    assert (await api.http.get("/docs")).status_code == 200


async def test_metrics(api):
    job = (await api.run()).json()
    await api.take()
    await api.done(job["id"], {"output": 1})
    await api.run()
    text = (await api.http.get("/metrics", headers=api.auth())).text
    assert f'podium_jobs_submitted_total{{endpoint="{api.ep}"}} 2.0' in text
    assert f'podium_queue_depth{{endpoint="{api.ep}"}} 1.0' in text
    assert "podium_job_delay_seconds_bucket" in text
    assert "podium_job_execution_seconds_bucket" in text
    assert f'podium_workers{{endpoint="{api.ep}",state="idle"}} 1.0' in text


async def test_status_bad_query_values(api):
    job = (await api.run()).json()
    r = await api.status(job["id"], ttl="soon")
    assert r.status_code == 400 and "ttl" in r.json()["error"]
    r = await api.status(job["id"], wait="later")
    assert r.status_code == 400 and "wait" in r.json()["error"]


async def test_revoked_key_is_refused_at_once_despite_the_lookup_cache(api):
    r = await api.http.post("/v1/keys", json={"name": "c", "scopes": ["run"]}, headers=api.auth())
    key = r.json()
    assert (await api.run(key=key["key"])).status_code == 200  # now cached
    await api.http.delete(f"/v1/keys/{key['id']}", headers=api.auth())
    assert (await api.run(key=key["key"])).status_code == 401
