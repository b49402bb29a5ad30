"""Load-balancing endpoints end to end: a `podium serve` gateway whose fleet runs a real
FastAPI app (tests/lb_app.py: `/ping` 204 while it "loads", then 200) as a process
command, and clients calling it through the gateway the way RunPod's are called: by Host
(`ENDPOINT_ID.localhost`) and by the path form /lb/ENDPOINT_ID/.

Scale from zero on the first request; 200 concurrent requests across 2 workers, none lost;
an SSE stream whose first event arrives before the last is produced; a WebSocket echo; a
worker killed mid-request (the client gets a 5xx JSON error, the next request another
worker); affinity soft and strict; hostile inputs. (As an image: test_containers.py.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.conftest import REDIS_URL, _redis_available, drop_redis_prefix
from tests.e2e.conftest import Gateway, free_port, wait_until

pytestmark = pytest.mark.e2e

APP = Path(__file__).resolve().parents[1] / "lb_app.py"
COMMAND = f"{sys.executable} {APP}"
ARGS = ["--supervisor-tick-s", "0.2", "--gpus", "none"]
ENV = {
    "PODIUM_LB_WAIT_S": "20",  # a request waits this long for a worker
    "PODIUM_LB_PROCESSING_S": "6",  # then 524 (a held request)
    "PODIUM_LB_BODY_IDLE_S": "2",  # then 408 (a trickled body)
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(
        data_dir=tmp_path_factory.mktemp("lb-gw"), port=free_port(), extra_args=ARGS, env=ENV
    ).start()
    try:
        yield gw
    finally:
        gw.stop()


def _deploy(gw: Gateway, **spec: Any) -> dict[str, Any]:
    body = {
        "name": "lb",
        "type": "LOAD_BALANCER",
        "templateId": "custom",
        "command": COMMAND,
        "idleTimeout": 60,
        "gpuCount": 0,
        **spec,
    }
    with gw.client() as c:
        r = c.post("/v1/endpoints", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())


def _auth(gw: Gateway, key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key or gw.admin_key}"}


def _host(gw: Gateway, ep: str) -> dict[str, str]:
    return {**_auth(gw), "Host": f"{ep}.localhost:{gw.port}"}


def _workers(gw: Gateway, ep: str) -> list[dict[str, Any]]:
    with gw.client() as c:
        r = c.get(f"/v1/endpoints/{ep}", params={"includeWorkers": "true"})
        return list(r.json()["workers"])


def _ready(gw: Gateway, ep: str, n: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        ready = [w for w in _workers(gw, ep) if w.get("health") == "ready"]
        return ready if len(ready) >= n else None

    return list(wait_until(check, timeout=60, what=f"{n} ready workers of {ep}"))


@pytest.fixture(scope="module")
def two(gw: Gateway) -> dict[str, Any]:
    """An endpoint kept at two workers."""
    ep = _deploy(gw, name="two", workersMin=2, workersMax=2)
    _ready(gw, ep["id"], 2)
    return ep


def test_scale_from_zero_on_the_first_request_by_host(gw: Gateway) -> None:
    ep = _deploy(gw, name="zero", workersMin=0, workersMax=1)
    assert ep["type"] == "LOAD_BALANCER" and ep["scalerType"] == "REQUEST_COUNT"
    assert ep["url"] == f"http://{ep['id']}.localhost:{gw.port}"
    assert _workers(gw, ep["id"]) == []
    r = httpx.post(f"{gw.url}/generate?x=1", json={"a": 1}, headers=_host(gw, ep["id"]), timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["echo"] == {"a": 1} and body["query"] == "x=1" and body["path"] == "/generate"
    assert r.headers["x-runpod-worker-id"] == body["worker"]
    assert r.headers["x-app"] == "lb-app"  # the worker's own headers come back
    assert body["authorization"] is None  # the key stays at the gateway
    assert body["forwardedFor"] == "127.0.0.1"
    # the proxy may route to a worker a moment before the fleet's report shows it ready
    (worker,) = _ready(gw, ep["id"], 1)
    assert worker["id"] == body["worker"] and len(_workers(gw, ep["id"])) == 1
    assert worker["coldStartSeconds"] is not None and worker["coldStartSeconds"] >= 0
    # the path form reaches the same worker; the queue routes are refused
    r = httpx.post(f"{gw.url}/lb/{ep['id']}/generate", json={"b": 2}, headers=_auth(gw))
    assert r.status_code == 200 and r.json()["worker"] == body["worker"]
    r = httpx.post(f"{gw.url}/v2/{ep['id']}/run", json={"input": {}}, headers=_auth(gw))
    assert r.status_code == 400 and "LOAD_BALANCER" in r.json()["error"]


def test_two_hundred_concurrent_requests_over_two_workers(gw: Gateway, two: dict) -> None:
    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gw.url, headers=_auth(gw), timeout=60) as c:
            calls = [c.post(f"/lb/{two['id']}/generate", json={"i": i}) for i in range(200)]
            return list(await asyncio.gather(*calls))

    answers = asyncio.run(main())
    assert [r.status_code for r in answers] == [200] * 200
    assert sorted(r.json()["echo"]["i"] for r in answers) == list(range(200))
    assert len({r.json()["worker"] for r in answers}) == 2


def test_server_sent_events_arrive_as_they_are_produced(gw: Gateway, two: dict) -> None:
    ep = two["id"]
    with (
        httpx.Client(base_url=gw.url, headers=_auth(gw), timeout=30) as c,
        c.stream("GET", f"/lb/{ep}/stream/sse-1") as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        first = next(lines)
        assert first.startswith("data: first ")  # before the rest is even produced
        worker = r.headers["x-runpod-worker-id"]
        opened = c.post(f"/lb/{ep}/open/sse-1", headers={"X-Runpod-Worker-Id": f"strict {worker}"})
        assert opened.status_code == 200 and opened.json()["worker"] == worker
        rest = [line for line in lines if line]
    assert rest == ["data: 0", "data: 1", "data: 2", "data: [DONE]"]


def test_a_websocket_is_relayed_both_ways(gw: Gateway, two: dict) -> None:
    url = f"ws://127.0.0.1:{gw.port}/lb/{two['id']}/ws"
    with ws_connect(url, additional_headers=_auth(gw), open_timeout=20) as ws:
        ws.send("hello")
        answer = ws.recv(timeout=20)
        ws.send("again")
        again = ws.recv(timeout=20)
    worker = str(answer).split(":", 1)[0]
    assert answer == f"{worker}:hello" and again == f"{worker}:again"
    with pytest.raises(InvalidStatus) as refused:  # no key: refused before the handshake
        ws_connect(url, open_timeout=20)
    assert refused.value.response.status_code == 403


def test_affinity_soft_and_strict(gw: Gateway, two: dict) -> None:
    ep = two["id"]
    ids = sorted(w["id"] for w in _ready(gw, ep, 2))
    with httpx.Client(base_url=gw.url, headers=_auth(gw), timeout=30) as c:
        for wid in ids:
            for header in (wid, f"strict {wid}"):
                r = c.post(f"/lb/{ep}/generate", json={}, headers={"X-Runpod-Worker-Id": header})
                assert r.status_code == 200 and r.json()["worker"] == wid
                assert r.headers["x-runpod-worker-id"] == wid
                assert "x-runpod-worker-id" not in r.json()["headers"]  # not forwarded
        r = c.post(f"/lb/{ep}/generate", json={}, headers={"X-Runpod-Worker-Id": "nobody"})
        assert r.status_code == 200 and r.json()["worker"] in ids  # soft: any other
        r = c.post(f"/lb/{ep}/generate", json={}, headers={"X-Runpod-Worker-Id": "strict nobody"})
        assert r.status_code == 404 and r.json()["code"] == "affinity_worker_gone"


def test_a_worker_killed_mid_request(gw: Gateway, two: dict) -> None:
    ep = two["id"]
    victim = _ready(gw, ep, 2)[0]["id"]
    strict = {"X-Runpod-Worker-Id": f"strict {victim}"}
    with httpx.Client(base_url=gw.url, headers=_auth(gw), timeout=30) as c:

        def held() -> httpx.Response:
            return c.get(f"/lb/{ep}/hold/kill-1", headers=strict)

        async def main() -> httpx.Response:
            task = asyncio.get_running_loop().run_in_executor(None, held)

            def holding() -> dict | None:
                r = c.get(f"/lb/{ep}/holding", headers=strict)
                return dict(r.json()) if "kill-1" in r.json()["gates"] else None

            found = await asyncio.get_running_loop().run_in_executor(
                None, lambda: wait_until(holding, timeout=20, what="the held request")
            )
            os.kill(int(found["pid"]), signal.SIGKILL)
            return await task

        r = asyncio.run(main())
        assert r.status_code == 502, r.text
        assert r.json()["code"] == "worker_failed" and victim in r.json()["error"]
        assert r.headers["x-runpod-worker-id"] == victim
        for _ in range(3):  # the next requests go to a healthy worker
            r = c.post(f"/lb/{ep}/generate", json={})
            assert r.status_code == 200 and r.json()["worker"] != victim
    # the fleet replaces it (a crash: restarted)
    _ready(gw, ep, 2)


def test_a_worker_that_never_answers_gets_524(gw: Gateway, two: dict) -> None:
    r = httpx.get(f"{gw.url}/lb/{two['id']}/hold/never", headers=_auth(gw), timeout=30)
    assert r.status_code == 524 and r.json()["code"] == "timeout"


def test_no_ready_worker_is_400_after_the_wait(gw: Gateway) -> None:
    ep = _deploy(gw, name="never", workersMin=0, workersMax=0)
    r = httpx.get(f"{gw.url}/lb/{ep['id']}/ping", headers=_auth(gw), timeout=60)
    assert r.status_code == 400 and r.json()["code"] == "no_workers"


def test_who_may_call(gw: Gateway, two: dict) -> None:
    ep = two["id"]
    other = _deploy(gw, name="other", workersMin=0, workersMax=1)["id"]
    with gw.client() as c:
        ro = c.post("/v1/keys", json={"name": "ro", "scopes": ["read"]}).json()["key"]
        mine = c.post(
            "/v1/keys", json={"name": "mine", "scopes": ["run"], "endpoints": [other]}
        ).json()["key"]
    url = f"{gw.url}/lb/{ep}/generate"
    assert httpx.post(url, json={}).status_code == 401
    assert httpx.post(url, json={}, headers=_auth(gw, ro)).status_code == 403
    # a Host naming this endpoint with a key limited to another one
    r = httpx.post(f"{gw.url}/generate", json={}, headers={**_host(gw, ep), **_auth(gw, mine)})
    assert r.status_code == 403 and "error" in r.json()
    r = httpx.post(f"{gw.url}/lb/nosuchendpoint/generate", json={}, headers=_auth(gw))
    assert r.status_code == 404 and "error" in r.json()
    # a Host that names no load-balancing endpoint is the gateway itself
    r = httpx.get(f"{gw.url}/healthz", headers={"Host": f"nosuchendpoint.localhost:{gw.port}"})
    assert r.status_code == 200


def test_hostile_requests(gw: Gateway, two: dict) -> None:
    ep = two["id"]
    big = b"x" * (31 * 1024 * 1024)
    with httpx.Client(base_url=gw.url, headers=_auth(gw), timeout=60) as c:
        r = c.post(f"/lb/{ep}/size", content=big)  # Content-Length says so: refused at once
        assert r.status_code == 413 and r.json()["code"] == "too_large"

        def chunks() -> Iterator[bytes]:
            for _ in range(31):
                yield b"x" * (1024 * 1024)

        r = c.post(f"/lb/{ep}/size", content=chunks())  # chunked: cut at 30 MB
        assert r.status_code == 413 and r.json()["code"] == "too_large"
        r = c.post(f"/lb/{ep}/size", content=b"y" * (1024 * 1024))
        assert r.status_code == 200 and r.json()["bytes"] == 1024 * 1024
        # hop-by-hop headers and the ones `Connection` names stay here
        r = c.post(
            f"/lb/{ep}/generate",
            json={},
            headers={"Connection": "keep-alive, X-Secret", "X-Secret": "s", "X-Kept": "k"},
        )
        seen = r.json()["headers"]
        assert "x-secret" not in seen and seen["x-kept"] == "k"
        assert "authorization" not in seen
    # a trickled body: cut off after PODIUM_LB_BODY_IDLE_S of silence
    with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as s:
        s.sendall(
            (
                f"POST /lb/{ep}/size HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {gw.admin_key}\r\nContent-Length: 100\r\n\r\nabc"
            ).encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = s.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


@pytest.mark.redis
def test_any_gateway_on_one_redis_routes_to_any_worker(tmp_path: Path) -> None:
    """Gateway A runs the fleet; gateway B (no fleet of its own) shares A's Redis: B's
    waiting request scales A's endpoint from zero (B's load record), and B balances over
    A's workers."""
    if not _redis_available():
        pytest.fail(f"Redis is not answering at {REDIS_URL}; start it (see .ci/run).")
    store = f"{REDIS_URL}?prefix=e2elb{uuid.uuid4().hex[:8]}"
    a = Gateway(data_dir=tmp_path / "a", port=free_port(), store=store, extra_args=ARGS, env=ENV)
    b = Gateway(
        data_dir=tmp_path / "b",
        port=free_port(),
        store=store,
        extra_args=["--no-supervisor"],
        env=ENV,
    )
    a.data_dir.mkdir()
    b.data_dir.mkdir()
    a.start()
    try:
        b.start()
        key = {"Authorization": f"Bearer {a.admin_key}"}  # keys live in the shared store
        ep = _deploy(a, name="shared", workersMin=0, workersMax=2, scalerValue=1)["id"]
        r = httpx.post(f"{b.url}/lb/{ep}/generate", json={"via": "b"}, headers=key, timeout=60)
        assert r.status_code == 200 and r.json()["echo"] == {"via": "b"}, r.text
        with a.client() as c:
            c.patch(f"/v1/endpoints/{ep}", json={"workersMin": 2})
        _ready(a, ep, 2)

        async def main() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=b.url, headers=key, timeout=60) as c:
                calls = [c.post(f"/lb/{ep}/generate", json={"i": i}) for i in range(60)]
                return list(await asyncio.gather(*calls))

        answers = asyncio.run(main())
        assert [r.status_code for r in answers] == [200] * 60
        assert len({r.json()["worker"] for r in answers}) == 2
    finally:
        b.stop()
        a.stop()
        drop_redis_prefix(store)
