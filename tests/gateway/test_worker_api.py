"""Worker protocol (PROTOCOL.md §2) through the in-process app, on every store backend."""

from __future__ import annotations

import asyncio
import json


async def test_take_holds_then_204(api):
    r = await api.take(hold=0.1)
    assert r.status_code == 204 and r.content == b""


async def test_take_wakes_when_a_job_arrives(api):
    task = asyncio.create_task(api.take(hold=5))
    await asyncio.sleep(0.05)
    job = (await api.run()).json()
    r = await asyncio.wait_for(task, 3)
    assert r.status_code == 200 and r.json()["id"] == job["id"]


async def test_take_batch_returns_a_list(api):
    ids = [(await api.run()).json()["id"] for _ in range(3)]
    r = await api.http.get(
        f"/v2/{api.ep}/job-take-batch/w1?gpu=cpu&batch_size=2&job_in_progress=0&hold=0",
        headers=api.worker(),
    )
    assert [j["id"] for j in r.json()] == ids[:2]
    r = await api.http.get(f"/v2/{api.ep}/job-take-batch/w1?batch_size=0", headers=api.worker())
    assert r.status_code == 400 and "batch_size" in r.json()["error"]


async def test_progress_update_is_not_a_result(api):
    job = (await api.run()).json()
    await api.take()
    r = await api.done(job["id"], {"status": "IN_PROGRESS", "output": {"step": 2, "steps": 5}})
    assert r.status_code == 200
    st = (await api.status(job["id"])).json()
    assert st["status"] == "IN_PROGRESS" and st["output"] == {"step": 2, "steps": 5}
    await api.done(job["id"], {"output": "final"})
    assert (await api.status(job["id"])).json()["output"] == "final"


async def test_done_shapes(api):
    # empty-dict output arrives as {} (no key)
    a = (await api.run()).json()
    await api.take()
    await api.done(a["id"], {})
    assert (await api.status(a["id"])).json() == {
        **(await api.status(a["id"])).json(),
        "status": "COMPLETED",
        "output": {},
    }
    # dict with error -> FAILED, output kept
    b = (await api.run()).json()
    await api.take()
    await api.done(b["id"], {"output": {"partial": 1}, "error": "bad thing"})
    st = (await api.status(b["id"])).json()
    assert st["status"] == "FAILED" and st["error"] == "bad thing"
    # raised exception: the SDK's JSON string is kept as the error
    c = (await api.run()).json()
    await api.take()
    err = json.dumps({"error_type": "ValueError", "error_message": "nope"})
    await api.done(c["id"], {"error": err, "stopPod": True})
    st = (await api.status(c["id"])).json()
    assert st["status"] == "FAILED" and json.loads(st["error"])["error_type"] == "ValueError"


async def test_generator_final_post_takes_the_stream(api):
    job = (await api.run()).json()
    await api.take()
    for chunk in (1, 2, 3):
        await api.http.post(
            f"/v2/{api.ep}/job-stream/w1/{job['id']}?isStream=false",
            content=json.dumps({"output": chunk}).encode(),
            headers=api.worker(),
        )
    await api.done(job["id"], {"output": []}, stream=True)
    assert (await api.status(job["id"])).json()["output"] == [1, 2, 3]


async def test_duplicate_done_is_idempotent(api):
    job = (await api.run()).json()
    await api.take()
    assert (await api.done(job["id"], {"output": 1})).status_code == 200
    r = await api.done(job["id"], {"output": 2})
    assert r.status_code == 200 and r.json()["applied"] is False
    assert (await api.status(job["id"])).json()["output"] == 1


async def _done_next(api, job_id: str, n: object, worker_id: str = "w1"):
    return await api.http.post(
        f"/v2/{api.ep}/job-done/{worker_id}/{job_id}?gpu=cpu&isStream=false&podium_next={n}",
        content=b'{"output": 1}',
        headers=api.worker(),
    )


async def test_done_can_carry_the_workers_next_jobs(api):
    # Podium's runtime asks with ?podium_next=N: the answer brings up to N queued jobs,
    # taken for the same worker (IN_PROGRESS, its lease running), in queue order.
    a, b, c, d = [(await api.run()).json()["id"] for _ in range(4)]
    await api.take()
    r = await _done_next(api, a, 2)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED"
    assert [j["id"] for j in r.json()["next"]] == [b, c]
    assert all(j["input"] == {"x": 1} for j in r.json()["next"])
    for job_id in (b, c):
        st = (await api.status(job_id)).json()
        assert st["status"] == "IN_PROGRESS" and st["workerId"] == "w1"
    assert (await api.status(d)).json()["status"] == "IN_QUEUE"
    assert [j["id"] for j in (await _done_next(api, b, 1)).json()["next"]] == [d]
    # nothing left to take: an empty list, at once (the gateway does not hold it)
    r = await _done_next(api, c, 3)
    assert r.status_code == 200 and r.json()["next"] == []
    # a result the worker may not post takes nothing either
    e = (await api.run()).json()["id"]
    r = await _done_next(api, d, 1, worker_id="w2")
    assert r.status_code == 409
    assert (await api.status(e)).json()["status"] == "IN_QUEUE"


async def test_done_without_the_extension_carries_no_jobs(api):
    # What an unmodified runpod SDK worker sees: no `next` key, the queue untouched.
    a, b = [(await api.run()).json()["id"] for _ in range(2)]
    await api.take()
    r = await api.done(a, {"output": 1})
    assert "next" not in r.json()
    assert (await api.status(b)).json()["status"] == "IN_QUEUE"


async def test_done_with_a_bad_next_count_is_400_and_changes_nothing(api):
    a = (await api.run()).json()["id"]
    await api.take()
    for bad in ("x", -1, 10_000):
        r = await _done_next(api, a, bad)
        assert r.status_code == 400 and "podium_next" in r.json()["error"]
    assert (await api.status(a)).json()["status"] == "IN_PROGRESS"


async def test_foreign_worker_done_conflicts(api):
    job = (await api.run()).json()
    other = (await api.run()).json()
    await api.take("w1")
    r = await api.done(job["id"], {"output": 1}, worker_id="w2")
    assert r.status_code == 409 and "does not hold" in r.json()["error"]
    assert (await api.status(job["id"])).json()["status"] == "IN_PROGRESS"
    assert (await api.status(other["id"])).json()["status"] == "IN_QUEUE"


async def test_malformed_done_body_is_400_and_fails_the_job(api):
    job = (await api.run()).json()
    other = (await api.run()).json()
    await api.take()
    r = await api.done(job["id"], b"{this is not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    st = (await api.status(job["id"])).json()
    assert st["status"] == "FAILED" and "unusable result" in st["error"]
    assert (await api.status(other["id"])).json()["status"] == "IN_QUEUE"
    r = await api.done(job["id"], b"[1,2]")
    assert r.status_code == 400


async def test_oversized_result_fails_the_job(api):
    api.state.limits = type(api.state.limits)(result_bytes=100)
    job = (await api.run()).json()
    await api.take()
    r = await api.done(job["id"], {"output": "x" * 500})
    assert r.status_code == 413
    st = (await api.status(job["id"])).json()
    assert st["status"] == "FAILED" and "limit" in st["error"]


async def test_stop_channel_lists_cancelled_running_job(api):
    job = (await api.run()).json()
    await api.take()
    r = await api.http.get(f"/v2/{api.ep}/job-stop/w1?gpu=cpu&hold=0", headers=api.worker())
    assert r.status_code == 204
    waiter = asyncio.create_task(
        api.http.get(f"/v2/{api.ep}/job-stop/w1?gpu=cpu&hold=3", headers=api.worker())
    )
    await asyncio.sleep(0.05)
    await api.http.post(f"/v2/{api.ep}/cancel/{job['id']}", headers=api.auth())
    r = await asyncio.wait_for(waiter, 3)
    assert r.json() == {"jobsToStop": [job["id"]]}
    # the worker's late result changes nothing
    r = await api.done(job["id"], {"output": 1})
    assert r.status_code == 200
    assert (await api.status(job["id"])).json()["status"] == "CANCELLED"


async def test_ping_renews_lease_and_reports_unhealthy(api):
    job = (await api.run()).json()
    await api.take()
    lease = api.state.settings.lease_s
    for _ in range(3):
        api.clock.advance(lease - 1)
        r = await api.http.get(
            f"/v2/{api.ep}/ping/w1?gpu=cpu&job_id={job['id']}&runpod_version=1.12.0",
            headers=api.worker(),
        )
        assert r.status_code == 200
        await api.reap()
    assert (await api.status(job["id"])).json()["status"] == "IN_PROGRESS"
    await api.http.get(
        f"/v2/{api.ep}/ping/w2?status=unhealthy&check=gpu&reason=boom", headers=api.worker()
    )
    health = (await api.http.get(f"/v2/{api.ep}/health", headers=api.auth())).json()
    assert health["workers"]["unhealthy"] == 1


async def test_lost_worker_job_is_requeued_then_failed(api):
    job = (await api.run()).json()
    lease = api.state.settings.lease_s
    for attempt in range(3):
        r = await api.take(f"w{attempt}")
        assert r.json()["id"] == job["id"]
        api.clock.advance(lease + 1)
        await api.reap()
    st = (await api.status(job["id"])).json()
    assert st["status"] == "FAILED" and st["retries"] == 2
    assert "worker was lost" in st["error"]
