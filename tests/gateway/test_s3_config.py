"""s3Config over HTTP, on both stores: kept with the job, handed to its worker in the job
object, never shown to clients, refused when it is not an object."""

from __future__ import annotations

import pytest

S3 = {"accessId": "a", "accessSecret": "top-secret", "bucketName": "b", "endpointUrl": "u"}


async def test_the_worker_gets_s3config_and_clients_never_see_it(api):
    job_id = (await api.run({"input": {"x": 1}, "s3Config": S3})).json()["id"]
    r = await api.take()
    assert r.json()["s3Config"] == S3 and r.json()["input"] == {"x": 1}
    await api.done(job_id, {"output": {"ok": 1}})
    status = await api.status(job_id)
    assert "top-secret" not in status.text
    listed = await api.http.get(f"/v2/{api.ep}/requests", headers=api.auth())
    assert "top-secret" not in listed.text
    other = (await api.run({"input": {"x": 2}})).json()["id"]
    r = await api.take()
    assert r.json()["id"] == other and "s3Config" not in r.json()


@pytest.mark.parametrize("value", ["s3://bucket", 1, ["a"]])
async def test_s3config_must_be_an_object(api, value):
    r = await api.run({"input": {}, "s3Config": value})
    assert r.status_code == 400 and "s3Config" in r.json()["error"]
    assert (await api.take()).status_code == 204
