"""The OpenAI-compatible routes in-process, on both stores: the job each request becomes,
the answers, the errors in OpenAI's shape. The worker is played by hand here; the
official openai client against real workers is in tests/openai_routes/."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.gateway.conftest import make_api

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hello there"}]}
RESPONSE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "fake-llm",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "there hello"}}],
}


def _openai_error(r, status: int, kind: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if kind is not None:
        assert err["type"] == kind, err
    return err


async def _worker_job(api, worker: str = "w1") -> dict[str, Any]:
    for _ in range(100):  # bounded: the request is being submitted concurrently
        r = await api.take(worker, hold=0.1)
        if r.status_code == 200:
            return r.json()
    raise AssertionError("no job arrived")


async def _call(api, method: str, path: str, **kw: Any):
    headers = kw.pop("headers", api.auth())
    return await api.http.request(method, f"/v2/{api.ep}/openai/v1{path}", headers=headers, **kw)


async def test_chat_completion_is_a_worker_vllm_job_and_answers_its_output(api):
    call = asyncio.create_task(_call(api, "POST", "/chat/completions", json=CHAT))
    job = await _worker_job(api)
    assert job["input"] == {"openai_route": "/v1/chat/completions", "openai_input": CHAT}
    assert job["id"].startswith("sync-")
    await api.done(job["id"], {"output": [RESPONSE]}, stream=True)  # a generator's aggregate
    r = await call
    assert r.status_code == 200 and r.json() == RESPONSE
    assert r.headers["content-type"] == "application/json"


async def test_models_and_completions_routes(api):
    call = asyncio.create_task(_call(api, "GET", "/models"))
    job = await _worker_job(api)
    assert job["input"] == {"openai_route": "/v1/models"}
    models = {"object": "list", "data": [{"id": "fake-llm", "object": "model"}]}
    await api.done(job["id"], {"output": models})  # a plain handler's dict works too
    assert (await call).json() == models
    body = {"model": "fake-llm", "prompt": ["a", "b"], "max_tokens": 3}
    call = asyncio.create_task(_call(api, "POST", "/completions", json=body))
    job = await _worker_job(api)
    assert job["input"] == {"openai_route": "/v1/completions", "openai_input": body}
    await api.done(job["id"], {"output": [{"object": "text_completion", "choices": []}]})
    assert (await call).json()["object"] == "text_completion"
    call = asyncio.create_task(_call(api, "POST", "/responses", json={"input": "hi"}))
    job = await _worker_job(api)
    assert job["input"] == {"openai_route": "/v1/responses", "openai_input": {"input": "hi"}}
    await api.done(job["id"], {"output": [{"object": "response"}]})
    assert (await call).json() == {"object": "response"}


async def test_streaming_answers_server_sent_events_ending_with_done(api):
    body = {**CHAT, "stream": True}
    call = asyncio.create_task(_call(api, "POST", "/chat/completions", json=body))
    job = await _worker_job(api)
    stream = f"/v2/{api.ep}/job-stream/w1/{job['id']}"
    chunk = {"object": "chat.completion.chunk", "choices": [{"delta": {"content": "x"}}]}
    # worker-vllm's shapes: SSE text (cut anywhere), batches of objects, a single object
    for output in ('data: {"a": 1}\n\nda', 'ta: {"b": 2}\n\n', [chunk, chunk], chunk):
        r = await api.http.post(stream, json={"output": output}, headers=api.worker())
        assert r.status_code == 200
    await api.done(job["id"], {"output": []}, stream=True)
    r = await call
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [e for e in r.text.split("\n\n") if e]
    assert events[:2] == ['data: {"a": 1}', 'data: {"b": 2}']
    assert [json.loads(e.removeprefix("data: ")) for e in events[2:5]] == [chunk] * 3
    assert events[5:] == ["data: [DONE]"]


async def test_stream_the_worker_ended_with_done_gets_no_second_done(api):
    call = asyncio.create_task(
        _call(api, "POST", "/completions", json={"prompt": "p", "stream": True})
    )
    job = await _worker_job(api)
    r = await api.http.post(
        f"/v2/{api.ep}/job-stream/w1/{job['id']}",
        json={"output": 'data: {"t": 1}\n\ndata: [DONE]\n\n'},
        headers=api.worker(),
    )
    assert r.status_code == 200
    await api.done(job["id"], {"output": []}, stream=True)
    assert (await call).text == 'data: {"t": 1}\n\ndata: [DONE]\n\n'


async def test_a_handler_that_returns_instead_of_streaming_still_streams(api):
    call = asyncio.create_task(
        _call(api, "POST", "/chat/completions", json={**CHAT, "stream": True})
    )
    job = await _worker_job(api)
    await api.done(job["id"], {"output": RESPONSE})
    r = await call
    assert r.text == f"data: {json.dumps(RESPONSE, separators=(',', ':'))}\n\ndata: [DONE]\n\n"


@pytest.mark.parametrize(
    ("done", "status", "kind", "needle"),
    [
        # worker-vllm: the generator yields {"error": {...}}; the SDK posts str(dict)
        (
            {
                "error": str(
                    {
                        "message": 'vLLM returned HTTP 404: {"message": "no model x"}',
                        "type": "worker_error",
                        "code": None,
                    }
                )
            },
            404,
            "worker_error",
            "no model x",
        ),
        # worker-vllm before 2.x: an ErrorResponse object yielded as the answer
        (
            {
                "output": [
                    {
                        "object": "error",
                        "message": "bad temp",
                        "type": "BadRequestError",
                        "code": 400,
                    }
                ]
            },
            400,
            "BadRequestError",
            "bad temp",
        ),
        # Podium's runtime: a handler that raised
        (
            {"error": json.dumps({"error_type": "ValueError", "error_message": "it broke"})},
            500,
            "ValueError",
            "it broke",
        ),
        ({"error": "plain words"}, 500, "server_error", "plain words"),
    ],
)
async def test_worker_errors_become_openai_errors(api, done, status, kind, needle):
    call = asyncio.create_task(_call(api, "POST", "/chat/completions", json=CHAT))
    job = await _worker_job(api)
    await api.done(job["id"], done)
    err = _openai_error(await call, status, kind)
    assert needle in err["message"]


async def test_a_stream_that_fails_before_its_first_chunk_answers_an_http_error(api):
    call = asyncio.create_task(
        _call(api, "POST", "/chat/completions", json={**CHAT, "stream": True})
    )
    job = await _worker_job(api)
    await api.done(job["id"], {"error": "out of memory"})
    _openai_error(await call, 500, "server_error")


async def test_a_stream_that_fails_midway_ends_with_an_error_event(api):
    call = asyncio.create_task(
        _call(api, "POST", "/chat/completions", json={**CHAT, "stream": True})
    )
    job = await _worker_job(api)
    r = await api.http.post(
        f"/v2/{api.ep}/job-stream/w1/{job['id']}",
        json={"output": 'data: {"t": 1}\n\n'},
        headers=api.worker(),
    )
    assert r.status_code == 200
    await api.done(job["id"], {"error": "the GPU fell off"})
    events = [e for e in (await call).text.split("\n\n") if e]
    assert events[0] == 'data: {"t": 1}'
    assert json.loads(events[1].removeprefix("data: "))["error"]["message"] == "the GPU fell off"
    assert events[2] == "data: [DONE]"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "empty"),
        (b"{nope", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"stream": "yes"}', "stream"),
        (b'{"messages": [], "n": 1e400}', "JSON"),
        (b'{"messages": ' + b"[" * 99 + b"]" * 99 + b"}", "nested"),
        (b'{"m": 123456789012345678901234567890}', "64"),
    ],
)
async def test_bad_bodies_answer_400_in_openai_shape_and_queue_nothing(api, body, needle):
    r = await _call(api, "POST", "/chat/completions", content=body)
    err = _openai_error(r, 400, "invalid_request_error")
    assert needle in err["message"]
    assert (await api.take(hold=0)).status_code == 204


async def test_keys_scopes_and_unknown_endpoints_in_openai_shape(api):
    _openai_error(await _call(api, "GET", "/models", headers={}), 401, "authentication_error")
    bad = {"Authorization": "Bearer pk_wrong"}
    assert _openai_error(await _call(api, "GET", "/models", headers=bad), 401)["code"] == (
        "invalid_api_key"
    )
    r = await api.http.post("/v1/keys", json={"scopes": ["read"]}, headers=api.auth())
    read_key = r.json()["key"]
    r = await _call(api, "POST", "/chat/completions", json=CHAT, headers=api.auth(read_key))
    _openai_error(r, 403, "permission_error")
    r = await api.http.post("/v2/nope/openai/v1/chat/completions", json=CHAT, headers=api.auth())
    _openai_error(r, 404, "invalid_request_error")
    _openai_error(await _call(api, "GET", "/embeddings"), 405)
    _openai_error(await _call(api, "POST", "/Not A Route", json={}), 404)
    # Everything else keeps Podium's own shape.
    r = await api.http.get("/v2/nope/health", headers=api.auth())
    assert r.status_code == 404 and isinstance(r.json()["error"], str)
    assert (await api.take(hold=0)).status_code == 204


async def test_an_answer_not_there_in_time_cancels_the_job(tmp_path, clock):
    app = await make_api("sqlite", tmp_path, clock, openai_wait_ms=1000)
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            auth = {"Authorization": f"Bearer {app.state.new_admin_key}"}
            ep = (await http.post("/v1/endpoints", json={"name": "t"}, headers=auth)).json()
            r = await http.post(
                f"/v2/{ep['id']}/openai/v1/chat/completions", json=CHAT, headers=auth
            )
            err = _openai_error(r, 504, "timeout")
            assert "cancelled" in err["message"]
            [entry] = (await http.get(f"/v2/{ep['id']}/requests", headers=auth)).json()["requests"]
            assert entry["status"] == "CANCELLED"


async def test_a_stream_whose_worker_is_lost_ends_with_an_error_and_cancels(api):
    call = asyncio.create_task(
        _call(api, "POST", "/chat/completions", json={**CHAT, "stream": True})
    )
    job = await _worker_job(api)
    r = await api.http.post(
        f"/v2/{api.ep}/job-stream/w1/{job['id']}",
        json={"output": 'data: {"t": 1}\n\n'},
        headers=api.worker(),
    )
    assert r.status_code == 200
    for _ in range(200):  # bounded: until the client's stream has read the chunk
        if (await api.state.store.get(job["id"])).stream_read == 1:
            break
        await asyncio.sleep(0.01)
    api.clock.advance(api.state.settings.lease_s + 1)  # no heartbeat: the lease runs out
    await api.reap()  # back to the queue (a retry would stream from the start again)
    events = [e for e in (await asyncio.wait_for(call, 10)).text.split("\n\n") if e]
    assert events[0] == 'data: {"t": 1}'
    assert "lost mid-stream" in json.loads(events[1].removeprefix("data: "))["error"]["message"]
    assert events[2] == "data: [DONE]"
    assert (await api.status(job["id"])).json()["status"] == "CANCELLED"
