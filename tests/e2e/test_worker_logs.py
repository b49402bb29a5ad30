"""Worker logs end to end: a real `podium serve` gateway (with its supervisor) and real
workers print lines inside jobs; `podium logs` shows them tagged with their job, follows
them, and forgets them with the endpoint. Also: an unmodified runpod SDK worker, a
`podium worker --ship-logs` started by hand, the per-worker bound, and two gateways on
one Redis reading the same logs."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from podium.cli import app
from tests.conftest import REDIS_URL, drop_redis_prefix
from tests.e2e.conftest import Gateway, free_port, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
HANDLERS = REPO / "tests" / "logs" / "handlers"
CHATTY = f"{sys.executable} -m podium.worker {HANDLERS / 'chatty.py'}:handler"
RUNPOD_PY = REPO / ".venv-runpod" / "bin" / "python"
LINES_PER_WORKER = 300
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data = tmp_path_factory.mktemp("logs-gw")
    g = Gateway(
        data_dir=data,
        port=free_port(),
        extra_args=["--supervisor-tick-s", "0.2", "--take-hold-s", "2", "--gpus", "none"],
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PODIUM_LOG_LINES_PER_WORKER", str(LINES_PER_WORKER))
        mp.setenv("HOME", str(data / "home"))
        g.start()
    try:
        yield g
    finally:
        g.stop()


@pytest.fixture
def http(gw: Gateway) -> Iterator[httpx.Client]:
    with gw.client() as c:
        yield c


def deploy(http: httpx.Client, command: str) -> str:
    body = {"name": "logs", "templateId": "custom", "command": command, "workersMax": 1}
    r = http.post("/v1/endpoints", json={**body, "workersMin": 1})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def run(http: httpx.Client, ep: str, **inp: Any) -> dict[str, Any]:
    job = http.post(f"/v2/{ep}/run", json={"input": inp}).json()["id"]

    def final() -> dict[str, Any] | None:
        s = http.get(f"/v2/{ep}/status/{job}", params={"wait": 1000}).json()
        return s if s["status"] in FINAL else None

    return wait_until(final, timeout=60, what=f"job {job}")


def cli(gw: Gateway, *args: str) -> str:
    env = {"PODIUM_URL": gw.url, "PODIUM_API_KEY": gw.admin_key}
    r = CliRunner().invoke(app, ["logs", *args], env=env)
    assert r.exit_code == 0, r.output
    return r.output


def texts(gw: Gateway, ep: str, key: str | None = None, **params: Any) -> list[str]:
    with gw.client(key) as c:
        r = c.get(f"/v1/endpoints/{ep}/logs", params={"tail": 10_000, **params})
    assert r.status_code == 200, r.text
    return [ln["text"] for ln in r.json()["lines"]]


def test_podium_logs_job_shows_exactly_that_jobs_lines(gw: Gateway, http: httpx.Client):
    ep = deploy(http, CHATTY)
    a = run(http, ep, tag="alpha", lines=3)
    b = run(http, ep, tag="beta", lines=2)
    assert a["status"] == b["status"] == "COMPLETED"
    want = ["beta line 0", "beta line 1", "beta on stderr"]
    wait_until(lambda: [t for t in texts(gw, ep) if t.startswith("beta")] == want, what="beta")
    out = cli(gw, ep, "--job", a["id"])
    alpha = [line.split(" | ", 1)[1] for line in out.splitlines()]
    assert alpha[:4] == ["alpha line 0", "alpha line 1", "alpha line 2", "alpha on stderr"]
    assert not any(t.startswith("beta") for t in alpha)
    # the runtime's own lines about the job are the job's too; no marker line shows
    assert any(f"job {a['id']} COMPLETED" in t for t in alpha)
    every = texts(gw, ep)
    assert not any("podium-log-marker-" in t for t in every)
    assert every[0].startswith("--- podium: worker ") and " start, GPUs []" in every[0]
    assert [t for t in texts(gw, ep, job=b["id"]) if t.startswith("beta")] == want
    worker = b["workerId"]
    assert f"{a['workerId']} [{a['id']}] | alpha line 0" in out
    assert texts(gw, ep, worker="nobody") == []
    assert "beta line 1" in "".join(texts(gw, ep, worker=worker))


def test_follow_sees_a_line_printed_after_it_started(gw: Gateway, http: httpx.Client, tmp_path):
    r = http.post("/v1/endpoints", json={"name": "follow"})
    ep, token = r.json()["id"], r.json()["workerToken"]
    # a line before the follower starts: when it prints it, it is connected
    probe = {"lines": [{"text": "probe"}]}
    assert http.post(f"/v2/{ep}/worker-logs/probe", json=probe, headers={"Authorization": token})
    out = tmp_path / "follow.out"
    env = {**os.environ, "PODIUM_URL": gw.url, "PODIUM_API_KEY": gw.admin_key}
    with out.open("wb") as fh:
        follower = subprocess.Popen(
            [sys.executable, "-m", "podium.cli", "logs", ep, "--follow", "--tail", "1"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until(lambda: "| probe" in out.read_text(), what="the follower connected")
        assert "late" not in out.read_text()
        later = {"lines": [{"text": "late line", "jobs": ["j-late"]}]}
        http.post(f"/v2/{ep}/worker-logs/w1", json=later, headers={"Authorization": token})
        wait_until(lambda: "late line" in out.read_text(), timeout=20, what="followed line")
        assert "w1 [j-late] | late line" in out.read_text()
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(10)


@pytest.mark.runpod
@pytest.mark.skipif(not RUNPOD_PY.exists(), reason=f"no runpod SDK venv at {RUNPOD_PY}")
def test_an_unmodified_runpod_sdk_workers_lines_are_tagged(gw: Gateway, http: httpx.Client):
    ep = deploy(http, f"{RUNPOD_PY} {HANDLERS / 'chatty_sdk.py'}")
    a = run(http, ep, tag="sdk-a", lines=2)
    b = run(http, ep, tag="sdk-b", lines=2)
    assert a["status"] == b["status"] == "COMPLETED", (a, b)
    wait_until(lambda: any("sdk-b on stderr" in t for t in texts(gw, ep)), what="sdk-b")
    mine = texts(gw, ep, job=a["id"])
    assert [t for t in mine if t.startswith("sdk-")] == [
        "sdk-a line 0",
        "sdk-a line 1",
        "sdk-a on stderr",
    ]
    assert any('"Started."' in t for t in mine) and any('"Finished."' in t for t in mine)


def test_a_worker_started_by_hand_ships_with_ship_logs(gw: Gateway, http: httpx.Client, tmp_path):
    r = http.post("/v1/endpoints", json={"name": "by-hand"})
    ep, token = r.json()["id"], r.json()["workerToken"]
    terminal = tmp_path / "terminal.out"
    env = {**os.environ, "RUNPOD_POD_ID": "by-hand-1", "HOME": str(tmp_path)}
    argv = [
        *(sys.executable, "-m", "podium.cli", "worker", f"{HANDLERS / 'chatty.py'}:handler"),
        *("--gateway", gw.url, "--endpoint", ep, "--token", token, "--ship-logs"),
    ]
    with terminal.open("wb") as fh:
        worker = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        job = run(http, ep, tag="hand", lines=2)
        assert job["status"] == "COMPLETED" and job["workerId"] == "by-hand-1"
        wait_until(lambda: "hand on stderr" in texts(gw, ep, job=job["id"]), what="shipped")
        assert [t for t in texts(gw, ep, job=job["id"]) if t.startswith("hand")] == [
            "hand line 0",
            "hand line 1",
            "hand on stderr",
        ]
        assert texts(gw, ep, worker="by-hand-1")[0].startswith("20")  # its logging lines
        wait_until(lambda: "hand line 1" in terminal.read_text(), what="echoed")
        assert "podium-log-marker-" not in terminal.read_text()
    finally:
        worker.terminate()
        assert worker.wait(20) == 0
    # its last lines (the runtime says it exits) were shipped before it ended
    assert any("exiting" in t for t in texts(gw, ep, worker="by-hand-1"))


def test_the_per_worker_bound_holds_and_delete_takes_the_logs(gw: Gateway, http: httpx.Client):
    ep = deploy(http, CHATTY)
    job = run(http, ep, tag="many", lines=LINES_PER_WORKER * 2)
    wait_until(lambda: "many on stderr" in texts(gw, ep), timeout=30, what="all lines")
    kept = texts(gw, ep, worker=job["workerId"])
    assert len(kept) == LINES_PER_WORKER
    assert kept[-1] == "many on stderr" or "COMPLETED" in kept[-1] or kept[-1].startswith("20")
    assert f"many line {LINES_PER_WORKER * 2 - 1}" in kept
    assert "many line 0" not in kept
    assert http.delete(f"/v1/endpoints/{ep}").status_code == 200
    assert http.get(f"/v1/endpoints/{ep}/logs").status_code == 404
    with sqlite3.connect(gw.data_dir / "podium.db") as db:
        (left,) = db.execute("SELECT count(*) FROM worker_logs WHERE endpoint_id = ?", (ep,))
    # a line the draining worker shipped after the delete is refused (404): none stay
    assert left == (0,)


@pytest.mark.redis
def test_two_gateways_on_one_redis_read_the_same_logs(tmp_path):
    store = f"{REDIS_URL}?prefix=e2elogs{uuid.uuid4().hex[:8]}"
    gws = []
    try:
        for name in ("a", "b"):
            data = tmp_path / name
            data.mkdir()
            # no supervisor: this is about the store that both gateways read
            solo = ["--no-supervisor"]
            gws.append(Gateway(data_dir=data, port=free_port(), store=store, extra_args=solo))
            gws[-1].start()  # listed first: a start that times out is still stopped
        a, b = gws
        ep = a.create_endpoint()
        with httpx.Client(base_url=a.url, headers={"Authorization": ep["workerToken"]}) as w:
            r = w.post(
                f"/v2/{ep['id']}/worker-logs/w1",
                json={"lines": [{"text": "one", "jobs": ["j1"]}, {"text": "two"}]},
            )
            assert r.status_code == 200, r.text
        key = a.admin_key  # the first gateway made it; both share the store
        assert texts(b, ep["id"], key) == ["one", "two"]
        assert texts(b, ep["id"], key, job="j1") == ["one"]
        with b.client(key) as c:
            assert c.delete(f"/v1/endpoints/{ep['id']}").status_code == 200
        with a.client() as c:
            assert c.get(f"/v1/endpoints/{ep['id']}/logs").status_code == 404
    finally:
        for g in gws:
            g.stop()
        drop_redis_prefix(store)


def test_followers_are_bounded_and_freed_when_they_leave(gw: Gateway, http: httpx.Client):
    from podium.gateway.logs_api import FOLLOWERS_PER_ENDPOINT

    ep = http.post("/v1/endpoints", json={"name": "followers"}).json()["id"]
    url = f"/v1/endpoints/{ep}/logs"
    params = {"follow": "true", "tail": "0"}
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(gw.client(timeout=10))
        for _ in range(FOLLOWERS_PER_ENDPOINT):
            r = stack.enter_context(client.stream("GET", url, params=params))
            assert r.status_code == 200

        # every stream above is open: the gateway counted them once their bodies began
        def refused() -> bool:
            with gw.client() as c, c.stream("GET", url, params=params) as extra:
                return extra.status_code == 429

        wait_until(refused, what="the follower limit")

    # the clients went away: their places are free again
    def accepted() -> bool:
        with gw.client() as c, c.stream("GET", url, params=params) as again:
            return again.status_code == 200

    wait_until(accepted, what="freed follower places")
