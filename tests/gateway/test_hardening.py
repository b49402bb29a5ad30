"""Issue 9's attacks and careless uses, each answered with a 4xx JSON error and no other
job touched, on every store backend."""

from __future__ import annotations

import json

import pytest

from podium import codec
from podium.gateway.http import BodyDecoder
from podium.jobs import DEFAULT_LIMITS

NESTED_976 = "[" * 976 + "]" * 976


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def _key(api, scopes, endpoints=None) -> str:
    body = {"name": "k", "scopes": scopes, "endpoints": endpoints or []}
    r = await api.http.post("/v1/keys", json=body, headers=api.auth())
    assert r.status_code == 200, r.text
    return r.json()["key"]


def _error(r, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()["error"]


# --- 1. one codec and one nesting limit at every entrance -----------------------------


async def test_deep_input_is_refused_and_expiry_goes_on(api):
    """Critical: a deeply nested input used to stop every reaper pass for everyone."""
    other = (await api.run({"input": {}, "policy": {"ttl": 5000}})).json()["id"]
    body = '{"input": ' + NESTED_976 + ', "policy": {"ttl": 1000}}'
    r = await api.http.post(f"/v2/{api.ep}/run", content=body, headers=api.auth())
    assert f"the limit is {codec.MAX_DEPTH}" in _error(r, 400)
    r = await api.http.post(f"/v2/{api.ep}/runsync?wait=1000", content=body, headers=api.auth())
    assert _error(r, 400)
    api.clock.advance(6)
    await api.reap()
    st = (await api.status(other)).json()
    assert st["status"] == "TIMED_OUT"  # expiry still works for the other job
    health = (await api.http.get(f"/v2/{api.ep}/health", headers=api.auth())).json()
    assert health["jobs"]["inQueue"] == 0


async def test_nesting_at_the_limit_round_trips(api):
    deepest = nested(codec.MAX_DEPTH - 1)  # the body's object is level 1
    r = await api.http.post(
        f"/v2/{api.ep}/run", content='{"input": ' + deepest + "}", headers=api.auth()
    )
    assert r.status_code == 200, r.text
    job = (await api.take()).json()
    assert json.dumps(job["input"], separators=(",", ":")) == deepest


JSON_TYPE = {"Content-Type": "application/json"}


async def test_deep_bodies_refused_on_admin_routes(api):
    body = '{"name": "x", "inputSchema": {"a": ' + nested(200) + "}}"
    headers = {**api.auth(), **JSON_TYPE}
    r = await api.http.post("/v1/endpoints", content=body, headers=headers)
    assert "nested more than" in _error(r, 400)
    r = await api.http.patch(f"/v1/endpoints/{api.ep}", content=body, headers=headers)
    assert "nested more than" in _error(r, 400)
    r = await api.http.post("/v1/endpoints", content='{"name": 1e400}', headers=headers)
    assert "not valid JSON" in _error(r, 400)


async def test_admin_body_size_is_bounded(api):
    big = '{"name": "' + "x" * (2 * 1024 * 1024) + '"}'
    r = await api.http.post("/v1/endpoints", content=big, headers={**api.auth(), **JSON_TYPE})
    assert "limit" in _error(r, 413)


# --- 3. changing a job needs the run scope ---------------------------------------------


async def test_read_key_cannot_shorten_retention_or_consume_the_stream(api):
    reader = await _key(api, ["read"])
    job_id = (await api.run()).json()["id"]
    await api.take()
    await api.http.post(
        f"/v2/{api.ep}/job-stream/w1/{job_id}", json={"output": "chunk"}, headers=api.worker()
    )
    r = await api.http.get(f"/v2/{api.ep}/status/{job_id}?ttl=0", headers=api.auth(reader))
    assert "`run` scope" in _error(r, 403)
    r = await api.http.get(f"/v2/{api.ep}/stream/{job_id}", headers=api.auth(reader))
    assert "`run` scope" in _error(r, 403)
    # the owner still gets both the job and its chunk
    assert (await api.http.get(f"/v2/{api.ep}/status/{job_id}", headers=api.auth(reader))).json()[
        "status"
    ] == "IN_PROGRESS"
    r = await api.http.get(f"/v2/{api.ep}/stream/{job_id}", headers=api.auth())
    assert r.json()["stream"] == [{"output": "chunk"}]


# --- 4. a job's stream is capped at the result limit -----------------------------------


async def test_stream_total_is_capped_and_the_job_fails(api):
    api.state.limits = DEFAULT_LIMITS.__class__(result_bytes=3000, stream_chunk_bytes=1500)
    job_id = (await api.run()).json()["id"]
    await api.take()
    url = f"/v2/{api.ep}/job-stream/w1/{job_id}"
    chunk = {"output": "x" * 1000}
    assert (await api.http.post(url, json=chunk, headers=api.worker())).status_code == 200
    assert (await api.http.post(url, json=chunk, headers=api.worker())).status_code == 200
    r = await api.http.post(url, json=chunk, headers=api.worker())  # crosses 3000 bytes
    assert "3000 bytes" in _error(r, 413)
    st = (await api.status(job_id)).json()
    assert st["status"] == "FAILED" and "3000 bytes" in st["error"]
    # the worker is told to stop, and its late result changes nothing
    r = await api.http.get(f"/v2/{api.ep}/job-stop/w1?hold=0", headers=api.worker())
    assert r.json() == {"jobsToStop": [job_id]}
    r = await api.done(job_id, {"output": []}, stream=True)
    assert r.json()["applied"] is False
    assert (await api.status(job_id)).json()["status"] == "FAILED"


# --- 6. numbers in the query -----------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "9" * 400, "1e30x"])
async def test_query_numbers_answer_400(api, value):
    job_id = (await api.run()).json()["id"]
    for url in (
        f"/v2/{api.ep}/status/{job_id}?wait={value}",
        f"/v2/{api.ep}/status-sync/{job_id}?wait={value}",
    ):
        assert "`wait`" in _error(await api.http.get(url, headers=api.auth()), 400)
    r = await api.http.post(
        f"/v2/{api.ep}/runsync?wait={value}", json={"input": {}}, headers=api.auth()
    )
    assert "`wait`" in _error(r, 400)
    assert (await api.status(job_id)).json()["status"] == "IN_QUEUE"


@pytest.mark.parametrize("value", ["1e30", "9" * 30, "-5", "1.5", "inf", ""])
async def test_status_ttl_must_be_a_whole_number_in_range(api, value):
    job_id = (await api.run()).json()["id"]
    r = await api.http.get(f"/v2/{api.ep}/status/{job_id}?ttl={value}", headers=api.auth())
    assert "`ttl`" in _error(r, 400)


async def test_huge_wait_within_reason_is_clamped(api):
    job_id = (await api.run()).json()["id"]
    await api.take()
    await api.done(job_id, {"output": 1})
    r = await api.http.get(f"/v2/{api.ep}/status/{job_id}?wait=1e300", headers=api.auth())
    assert r.json()["status"] == "COMPLETED"


# --- 7. a job-done body nested too deep ------------------------------------------------


async def test_deep_job_done_fails_the_job_with_400(api):
    job_id = (await api.run()).json()["id"]
    await api.take()
    r = await api.done(job_id, ('{"output": ' + nested(1000) + "}").encode())
    assert "nested more than" in _error(r, 400)
    st = (await api.status(job_id)).json()
    assert st["status"] == "FAILED" and "unusable result" in st["error"]


async def test_deep_stream_chunk_is_refused(api):
    job_id = (await api.run()).json()["id"]
    await api.take()
    r = await api.http.post(
        f"/v2/{api.ep}/job-stream/w1/{job_id}",
        content='{"output": ' + nested(500) + "}",
        headers=api.worker(),
    )
    assert "nested more than" in _error(r, 400)
    assert (await api.status(job_id)).json()["status"] == "IN_PROGRESS"


# --- 8. /metrics shows what the key may see --------------------------------------------


async def test_metrics_for_an_endpoint_scoped_key(api):
    other = (await api.http.post("/v1/endpoints", json={"name": "o"}, headers=api.auth())).json()
    await api.run()
    await api.http.post(f"/v2/{other['id']}/run", json={"input": {}}, headers=api.auth())
    scoped = await _key(api, ["read"], [api.ep])
    text = (await api.http.get("/metrics", headers=api.auth(scoped))).text
    assert f'endpoint="{api.ep}"' in text
    assert other["id"] not in text
    everything = (await api.http.get("/metrics", headers=api.auth())).text
    assert other["id"] in everything and api.ep in everything


# --- 9. integers past 64 bits ----------------------------------------------------------


async def test_integer_past_64_bits_is_refused_never_changed(api):
    r = await api.http.post(
        f"/v2/{api.ep}/run",
        content='{"input": {"n": 123456789012345678901234567890}}',
        headers=api.auth(),
    )
    assert "123456789012345678901234567890" in _error(r, 400)
    assert "string" in r.json()["error"]
    # the edges of the 64-bit range go through exactly
    body = '{"input": {"a": 18446744073709551615, "b": -9223372036854775808, "c": 1e19}}'
    r = await api.http.post(f"/v2/{api.ep}/run", content=body, headers=api.auth())
    assert r.status_code == 200, r.text
    raw = (await api.take()).content
    assert b"18446744073709551615" in raw and b"-9223372036854775808" in raw


# --- 10. large bodies are decoded off the event loop -----------------------------------


async def test_large_bodies_go_through_the_decoding_process(api):
    api.state.decoder = BodyDecoder(off_loop_bytes=1024, processes=1)
    try:
        payload = {"input": {f"k{i}": i for i in range(5000)}}
        r = await api.run(payload)
        assert r.status_code == 200, r.text
        assert (await api.take()).json()["input"] == payload["input"]
        body = '{"input": {"pad": "' + "x" * 2000 + '", "deep": ' + nested(150) + "}}"
        r = await api.http.post(f"/v2/{api.ep}/run", content=body, headers=api.auth())
        assert "nested more than" in _error(r, 400)
    finally:
        api.state.decoder.close()


# --- 12. /healthz is liveness only without a key -----------------------------------------


async def test_healthz_hides_details_without_a_key(api):
    r = await api.http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"ok": True}
    r = await api.http.get("/healthz", headers=api.auth())
    assert r.json()["ok"] is True and "version" in r.json()
    reader = await _key(api, ["read"])
    assert _error(await api.http.get("/healthz", headers=api.auth(reader)), 403)
