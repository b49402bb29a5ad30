"""Load-balancing endpoints through the admin and client APIs, in process (every store):
the `type` setting, the routes a load balancer refuses, who may call /lb/..., a worker the
registry announces (a real app on loopback) reached by Host and by path, and /metrics.
Real fleets and workers: tests/e2e/test_lb.py."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI, Request

from podium.endpoints.loadbalancer import ANNOUNCE_URL

LB = {"type": "LOAD_BALANCER", "templateId": "custom", "command": "python app.py"}


async def _create(api, **body) -> dict:
    r = await api.http.post("/v1/endpoints", json={"name": "lb", **body}, headers=api.auth())
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_the_type_setting(api):
    ep = await _create(api, **LB)
    assert ep["type"] == "LOAD_BALANCER" and ep["scalerType"] == "REQUEST_COUNT"
    queue = await _create(api, name="q")
    assert queue["type"] == "QUEUE"
    r = await api.http.patch(
        f"/v1/endpoints/{queue['id']}", json={"type": "SOMETHING"}, headers=api.auth()
    )
    assert r.status_code == 400 and "`type` must be QUEUE or LOAD_BALANCER" in r.json()["error"]
    r = await api.http.patch(f"/v1/endpoints/{ep['id']}", json={"type": None}, headers=api.auth())
    assert r.status_code == 400
    r = await api.http.patch(
        f"/v1/endpoints/{ep['id']}", json={"type": "QUEUE"}, headers=api.auth()
    )
    assert r.status_code == 200 and r.json()["type"] == "QUEUE"


async def test_queue_routes_refuse_a_load_balancer_and_lb_routes_a_queue(api):
    ep = await _create(api, **LB)
    for path in ("run", "runsync"):
        r = await api.http.post(f"/v2/{ep['id']}/{path}", json={"input": {}}, headers=api.auth())
        assert r.status_code == 400 and "LOAD_BALANCER" in r.json()["error"]
    queue = await _create(api, name="q")
    r = await api.http.get(f"/lb/{queue['id']}/ping", headers=api.auth())
    assert r.status_code == 400 and "QUEUE endpoint" in r.json()["error"]
    r = await api.http.get("/lb/nosuchendpoint/ping", headers=api.auth())
    assert r.status_code == 404
    r = await api.http.get(f"/lb/{ep['id']}/ping")
    assert r.status_code == 401


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def app_server() -> AsyncIterator[str]:
    """A worker's HTTP server on loopback."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "DELETE"])
    async def echo(path: str, request: Request) -> dict:
        return {"path": path, "method": request.method, "body": (await request.body()).decode()}

    port = _port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_an_announced_worker_is_reached_by_host_and_by_path(api, app_server):
    ep = (await _create(api, **LB))["id"]
    info = {ANNOUNCE_URL: app_server, "health": "ready"}
    await api.state.store.heartbeat(ep, "w1", [], 30.0, state="idle", info=info)
    r = await api.http.post(f"/lb/{ep}/a/b?c=1", content=b"hi", headers=api.auth())
    assert r.status_code == 200, r.text
    assert r.json() == {"path": "a/b", "method": "POST", "body": "hi"}
    assert r.headers["x-runpod-worker-id"] == "w1"
    r = await api.http.delete("/x", headers={**api.auth(), "Host": f"{ep}.localhost:8000"})
    assert r.status_code == 200 and r.json()["method"] == "DELETE"
    metrics = (await api.http.get("/metrics", headers=api.auth())).text
    assert f'podium_lb_requests_total{{code="200",endpoint="{ep}"}} 2.0' in metrics
    totals = (await api.http.get(f"/v2/{ep}/metrics", headers=api.auth())).json()["totals"]
    assert totals["requests"]["total"] == totals["requests"]["completed"] == 2
    assert totals["executionMs"]["p98"] is not None  # the time to the answer's start
