"""ttl, executionTimeout and retention with the injected clock: nothing sleeps."""

from __future__ import annotations


async def test_ttl_times_out_a_queued_job(api):
    job = (await api.run({"input": {}, "policy": {"ttl": 5000}})).json()
    api.clock.advance(4)
    await api.reap()
    assert (await api.status(job["id"])).json()["status"] == "IN_QUEUE"
    api.clock.advance(2)
    await api.reap()
    st = (await api.status(job["id"])).json()
    assert st["status"] == "TIMED_OUT" and "ttl" in st["error"]
    assert (await api.take()).status_code == 204


async def test_execution_timeout_stops_the_worker(api):
    job = (await api.run({"input": {}, "policy": {"executionTimeout": 5000}})).json()
    await api.take()
    api.clock.advance(5.5)
    # keep the lease alive so only the execution timeout applies
    await api.http.get(f"/v2/{api.ep}/ping/w1?job_id={job['id']}", headers=api.worker())
    await api.reap()
    st = (await api.status(job["id"])).json()
    assert st["status"] == "TIMED_OUT" and "executionTimeout" in st["error"]
    r = await api.http.get(f"/v2/{api.ep}/job-stop/w1?hold=0", headers=api.worker())
    assert r.json() == {"jobsToStop": [job["id"]]}
    # and it can be retried
    r = await api.http.post(f"/v2/{api.ep}/retry/{job['id']}", headers=api.auth())
    assert r.json()["status"] == "IN_QUEUE"


async def test_endpoint_execution_timeout_is_the_default(api):
    ep = (
        await api.http.post(
            "/v1/endpoints", json={"name": "t", "executionTimeoutMs": 6000}, headers=api.auth()
        )
    ).json()
    await api.http.post(f"/v2/{ep['id']}/run", json={"input": {}}, headers=api.auth())
    r = await api.http.get(
        f"/v2/{ep['id']}/job-take/w?hold=0", headers={"Authorization": ep["workerToken"]}
    )
    assert r.json()["policy"]["executionTimeout"] == 6000


async def _complete(api, job_id):
    await api.take()
    await api.done(job_id, {"output": {"private": True}})


async def test_run_retention_is_30_minutes(api):
    job = (await api.run()).json()
    await _complete(api, job["id"])
    api.clock.advance(29 * 60)
    await api.reap()
    assert (await api.status(job["id"])).status_code == 200
    api.clock.advance(61)
    await api.reap()
    r = await api.status(job["id"])
    assert r.status_code == 404 and "retention" in r.json()["error"]


async def test_runsync_retention_is_1_minute(api):
    r = await api.http.post(
        f"/v2/{api.ep}/runsync?wait=1000", json={"input": {}}, headers=api.auth()
    )
    job_id = r.json()["id"]
    await _complete(api, job_id)
    api.clock.advance(59)
    await api.reap()
    assert (await api.status(job_id)).status_code == 200
    api.clock.advance(2)
    await api.reap()
    assert (await api.status(job_id)).status_code == 404


async def test_status_ttl_shortens_retention(api):
    job = (await api.run()).json()
    await _complete(api, job["id"])
    assert (await api.status(job["id"], ttl=10_000)).status_code == 200
    api.clock.advance(11)
    await api.reap()
    assert (await api.status(job["id"])).status_code == 404


async def test_status_ttl_lengthens_retention_up_to_7_days(api):
    job = (await api.run()).json()
    await _complete(api, job["id"])
    week = 7 * 86_400_000
    r = await api.status(job["id"], ttl=week + 1)
    assert r.status_code == 400 and "604800000" in r.json()["error"]
    assert (await api.status(job["id"], ttl=2 * 3_600_000)).status_code == 200
    api.clock.advance(3_600)  # past the 30 minutes /run keeps a job by default
    await api.reap()
    assert (await api.status(job["id"])).json()["output"] == {"private": True}
    api.clock.advance(3_601)
    await api.reap()
    assert (await api.status(job["id"])).status_code == 404
