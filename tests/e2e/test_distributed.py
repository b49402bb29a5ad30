"""Distributed mode: two gateway processes sharing one Redis (a real server)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL, _redis_available, drop_redis_prefix
from tests.e2e.conftest import Gateway, free_port, kill9_while_submitting, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


def _pair(tmp_path: Path, store: str) -> tuple[Gateway, Gateway]:
    gws = []
    for name in ("a", "b"):
        gw = Gateway(data_dir=tmp_path / name, port=free_port(), store=store)
        gw.data_dir.mkdir()
        gws.append(gw)
    return gws[0], gws[1]


@pytest.fixture
def redis_url():
    if not _redis_available():
        pytest.fail(f"Redis is not answering at {REDIS_URL}; start it (see .ci/run).")
    url = f"{REDIS_URL}?prefix=e2e{uuid.uuid4().hex[:8]}"
    yield url
    drop_redis_prefix(url)


@pytest.fixture
def pair(tmp_path, redis_url):
    a, b = _pair(tmp_path, redis_url)
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_submit_on_a_worker_on_b_status_on_both(tmp_path, redis_url):
    # B's fallback poll (60 s) is longer than the worker's hold (10 s): only the
    # notification published by A can bring the job to B's long-poll in time.
    a, b = _pair(tmp_path, redis_url)
    b.store = redis_url + "&poll=60"
    a.start()
    b.start()
    try:
        _submit_on_a_take_on_b(a, b)
    finally:
        a.stop()
        b.stop()


def _submit_on_a_take_on_b(a: Gateway, b: Gateway) -> None:
    key = a.admin_key  # keys live in the shared store: A's admin key works on B
    ep = a.create_endpoint()
    worker = {"Authorization": ep["workerToken"]}
    got: dict = {}

    def take_on_b() -> None:
        r = httpx.get(f"{b.url}/v2/{ep['id']}/job-take/wb?hold=10", headers=worker, timeout=15)
        got["status"] = r.status_code
        got["job"] = r.json() if r.status_code == 200 else None

    t = threading.Thread(target=take_on_b)
    t.start()
    with b.client(key) as cb:  # B's long-poll has begun once B has seen worker wb
        wait_until(
            lambda: cb.get(f"/v2/{ep['id']}/health").json()["workers"]["idle"] == 1,
            what="B's long-poll to begin",
        )
    with a.client(key) as ca:
        job = ca.post(f"/v2/{ep['id']}/run", json={"input": {"hello": "b"}}).json()
    t.join(15)
    assert got["status"] == 200, "the job did not reach B's long-poll within its hold"
    assert got["job"]["id"] == job["id"] and got["job"]["input"] == {"hello": "b"}
    httpx.post(
        f"{b.url}/v2/{ep['id']}/job-done/wb/{job['id']}", content=b'{"output": 7}', headers=worker
    ).raise_for_status()
    for gw in (a, b):
        with gw.client(key) as c:
            st = c.get(f"/v2/{ep['id']}/status/{job['id']}").json()
        assert st["status"] == "COMPLETED" and st["output"] == 7 and st["workerId"] == "wb"


def _reaper(gw: Gateway, key: str) -> dict:
    """The reaper's state, a detail of /healthz for the admin key."""
    headers = {"Authorization": key}
    return httpx.get(gw.url + "/healthz", headers=headers, timeout=5).json()["reaper"]


def test_kill_9_of_a_loses_nothing_acknowledged_and_the_reaper_moves(pair):
    a, b = pair
    # exactly one gateway reaps; A started first, so A holds the lock
    key = a.admin_key  # B shares A's store, and so its keys
    wait_until(lambda: _reaper(a, key)["active"], timeout=10, what="A's reaper to be active")
    assert not _reaper(b, key)["active"]
    ep = a.create_endpoint()
    acked = kill9_while_submitting(a, ep["id"], key)
    with b.client(key) as c:
        statuses = {c.get(f"/v2/{ep['id']}/status/{j}").json()["status"] for j in acked}
    assert statuses == {"IN_QUEUE"}
    # A's lease (5 s) lapses and B takes the reaper over
    wait_until(lambda: _reaper(b, key)["active"], timeout=15, what="B's reaper to take over")


def test_redis_unreachable_gives_503_then_recovers(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    # AOF on, so the data outlives the restart (docs/deployment.md: persistence)
    cmd = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        str(tmp_path),
    ]
    redis = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    gw = Gateway(data_dir=tmp_path / "g", port=free_port(), store=f"redis://127.0.0.1:{port}/0")
    gw.data_dir.mkdir()
    try:
        wait_until(
            lambda: (
                subprocess.run(
                    ["redis-cli", "-p", str(port), "ping"], capture_output=True
                ).returncode
                == 0
            )
        )
        gw.start()
        key = gw.admin_key
        ep = gw.create_endpoint()
        redis.terminate()
        redis.wait(10)
        # The answer comes at once rather than after a hang: the client's 10 s timeout
        # would raise before any assertion here.
        with gw.client(key, timeout=10) as c:
            r = c.post(f"/v2/{ep['id']}/run", json={"input": {}})
            assert r.status_code == 503, r.text
            assert "cannot be reached" in r.json()["error"]
            assert c.get("/healthz").status_code == 503
        redis = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        with gw.client(key) as c:
            wait_until(
                lambda: c.get("/healthz").status_code == 200,
                timeout=15,
                what="the gateway to reach Redis again",
            )
            r = c.post(f"/v2/{ep['id']}/run", json={"input": {}})
            assert r.status_code == 200 and r.json()["status"] == "IN_QUEUE"
    finally:
        gw.stop()
        redis.kill()
        redis.wait(10)
