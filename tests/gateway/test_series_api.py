"""GET /v2/{ep}/metrics: the Metrics tab's series over HTTP, on both stores — counts and
percentiles against the jobs run (a sorted-list oracle), worker samples, cold starts,
webhooks, scope, and two gateways on one Redis merging."""

from __future__ import annotations

import asyncio
import math
import uuid

import httpx
import pytest

from podium.board import FleetReport, Phase, WorkerStatus
from podium.gateway import create_app
from podium.series import RELATIVE_ERROR
from podium.settings import Settings
from podium.store import open_store
from tests.conftest import REDIS_URL, drop_redis_prefix
from tests.gateway.test_webhooks import Receiver, _gateway, _run_job


async def _metrics(api, interval: str = "1h", key: str | None = None) -> httpx.Response:
    return await api.http.get(
        f"/v2/{api.ep}/metrics", params={"interval": interval}, headers=api.auth(key)
    )


async def _key(api, scopes: list[str], endpoints: list[str] | None = None) -> str:
    body: dict = {"scopes": scopes} | ({"endpoints": endpoints} if endpoints is not None else {})
    r = await api.http.post("/v1/keys", json=body, headers=api.auth())
    assert r.status_code == 200, r.text
    return r.json()["key"]


def _oracle(values: list[float], q: float) -> float:
    return sorted(values)[max(0, math.ceil(q * len(values)) - 1)]


async def test_jobs_show_in_the_series_and_its_totals(api):
    executions, delays = [], []
    for i in range(12):
        job_id = (await api.run()).json()["id"]
        delay = 0.05 * (i + 1)
        api.clock.advance(delay)
        assert (await api.take()).json()["id"] == job_id
        run = 0.3 + 0.2 * ((i * 5) % 12)
        api.clock.advance(run)
        body = {"error": "boom"} if i == 3 else {"output": i}
        assert (await api.done(job_id, body)).status_code == 200
        delays.append(delay)
        executions.append(run)
    failed = [
        j
        for j in (
            await api.http.get(f"/v2/{api.ep}/requests?status=FAILED", headers=api.auth())
        ).json()["requests"]
    ]
    assert (
        await api.http.post(f"/v2/{api.ep}/retry/{failed[0]['id']}", headers=api.auth())
    ).status_code == 200
    queued = (await api.run()).json()["id"]
    assert (
        await api.http.post(f"/v2/{api.ep}/cancel/{queued}", headers=api.auth())
    ).status_code == 200

    r = await _metrics(api)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["interval"] == "1h" and body["stepSeconds"] == 60 and len(body["time"]) == 60
    assert all(len(v) == 60 for v in body["requests"].values())
    assert body["totals"]["requests"] == {
        "total": 13,
        "completed": 11,
        "failed": 1,
        "cancelled": 1,
        "timedOut": 0,
        "retried": 1,
    }
    assert sum(body["requests"]["total"]) == 13  # the points add up to the totals
    for name, values in (("executionMs", executions), ("delayMs", delays)):
        for p, q in (("p70", 0.7), ("p90", 0.9), ("p98", 0.98)):
            true = _oracle(values, q) * 1000
            assert abs(body["totals"][name][p] - true) <= RELATIVE_ERROR * true + 0.1, (name, p)
    assert body["totals"]["coldStartMs"] == {"p70": None, "p90": None, "p98": None}


async def test_older_jobs_leave_the_short_interval_but_stay_in_the_longer(api):
    job_id = (await api.run()).json()["id"]
    await api.take()
    await api.done(job_id, {"output": 1})
    api.clock.advance(2 * 3600)
    one_hour = (await _metrics(api, "1h")).json()
    assert one_hour["totals"]["requests"]["total"] == 0
    for interval, points in (("6h", 72), ("1d", 144), ("1w", 168)):
        body = (await _metrics(api, interval)).json()
        assert len(body["time"]) == points
        assert body["totals"]["requests"]["completed"] == 1, interval
    api.clock.advance(8 * 86400)
    await api.reap()  # drops what no tier keeps any more
    assert (await _metrics(api, "1w")).json()["totals"]["requests"]["total"] == 0


async def test_worker_samples_and_cold_starts(api):
    t = api.clock.now()
    fleet = api.state.fleet
    statuses = [
        WorkerStatus(id="w1", endpoint_id=api.ep, phase=Phase.READY, started_at=t, ready_at=t + 4),
        WorkerStatus(
            id="w2",
            endpoint_id=api.ep,
            phase=Phase.READY,
            started_at=t,
            ready_at=t + 0.5,
            restore_s=0.3,
        ),
        WorkerStatus(id="w3", endpoint_id=api.ep, phase=Phase.STARTING, started_at=t),
        WorkerStatus(id="w4", endpoint_id=api.ep, phase=Phase.THROTTLED),
        # started before this controller took over (adopted): its first contact here is
        # no cold start (else hours of "cold start" after a gateway restart)
        WorkerStatus(
            id="w5",
            endpoint_id=api.ep,
            phase=Phase.UNHEALTHY,
            started_at=t - 7200,
            ready_at=t + 1,
            adopted=True,
        ),
    ]
    api.clock.advance(5)
    fleet.publish(FleetReport({api.ep: statuses}, {}, None), api.clock.now())
    fleet.publish(FleetReport({api.ep: statuses}, {}, None), api.clock.now())  # no new start
    await api.run()
    assert (await api.take("w1")).status_code == 200  # w1 holds a job: running
    body = (await _metrics(api)).json()  # a read samples the endpoint's workers first
    last = {state: values[-1] for state, values in body["workers"].items()}
    assert last == {"running": 1, "idle": 1, "throttled": 1, "initializing": 1, "unhealthy": 1}
    assert body["workers"]["running"][0] is None  # no sample then
    assert body["totals"]["coldStarts"] == {"total": 2, "restored": 1}
    p98 = body["totals"]["coldStartMs"]["p98"]
    assert abs(p98 - 4000) <= RELATIVE_ERROR * 4000


async def test_scope_and_bad_input(api):
    reader = await _key(api, ["read"])
    assert (await _metrics(api, key=reader)).status_code == 200
    other = (
        await api.http.post("/v1/endpoints", json={"name": "other"}, headers=api.auth())
    ).json()["id"]
    limited = await _key(api, ["read", "run"], endpoints=[other])
    r = await _metrics(api, key=limited)
    assert r.status_code in (403, 404) and "error" in r.json()
    r = await api.http.get(f"/v2/{api.ep}/metrics")
    assert r.status_code == 401
    r = await _metrics(api, "1y")
    assert r.status_code == 400 and "1h, 6h, 1d, 1w" in r.json()["error"]
    for number in ("1e400", str(2**70), "-1", ""):  # numbers are no interval either
        r = await _metrics(api, number)
        assert r.status_code == 400 and "1h, 6h, 1d, 1w" in r.json()["error"], number
    r = await _metrics(api, "x" * 10_000)
    assert r.status_code == 400 and len(r.text) < 300
    r = await api.http.get("/v2/nope/metrics", headers=api.auth())
    assert r.status_code == 404


async def test_webhook_deliveries_are_counted_by_outcome(tmp_path, clock):
    app = await _gateway(tmp_path, clock, allow_private=True)
    async with (
        Receiver(fail_first=0) as rx,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        ep, _ = await _run_job(app, http, rx.url)
        await asyncio.wait_for(app.state.podium.webhooks.join(), 10)
        admin = {"Authorization": app.state.new_admin_key}
        body = (await http.get(f"/v2/{ep['id']}/metrics", headers=admin)).json()
    assert body["totals"]["webhooks"] == {"sent": 1, "succeeded": 1, "failed": 0}


@pytest.mark.redis
async def test_two_gateways_on_one_redis_count_each_job_once(tmp_path, clock):
    """Jobs submitted on one gateway and finished on the other: the series either
    gateway answers counts each job once, with both gateways' events merged."""
    url = f"{REDIS_URL}?prefix=t{uuid.uuid4().hex[:8]}"
    apps = []
    for name in ("a", "b"):
        s = Settings(data_dir=tmp_path / name, take_hold_s=0.1)
        apps.append(create_app(s, store=open_store(url, clock), clock=clock, run_background=False))
    a, b = apps
    try:
        async with (
            a.router.lifespan_context(a),
            b.router.lifespan_context(b),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://a") as ha,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=b), base_url="http://b") as hb,
        ):
            admin = {"Authorization": a.state.new_admin_key or b.state.new_admin_key}
            ep = (await ha.post("/v1/endpoints", json={"name": "two"}, headers=admin)).json()
            worker = {"Authorization": ep["workerToken"]}
            for i in range(10):
                submit, finish = (ha, hb) if i % 2 else (hb, ha)
                await submit.post(f"/v2/{ep['id']}/run", json={"input": {}}, headers=admin)
                job = (
                    await finish.get(f"/v2/{ep['id']}/job-take/w{i}?hold=0", headers=worker)
                ).json()
                clock.advance(0.5)
                await finish.post(
                    f"/v2/{ep['id']}/job-done/w{i}/{job['id']}", json={"output": i}, headers=worker
                )
            await a.state.podium.series.flush()  # b's events: flushed by b's own read
            got = [(await h.get(f"/v2/{ep['id']}/metrics", headers=admin)).json() for h in (hb, ha)]
    finally:
        drop_redis_prefix(url)
    for body in got:
        assert body["totals"]["requests"]["total"] == 10
        assert body["totals"]["requests"]["completed"] == 10
    assert got[0]["requests"] == got[1]["requests"]


async def test_the_writer_keeps_what_a_failed_write_could_not_store(tmp_path, clock):
    """The store refuses writes (SQLite's query_only: a real write error) for a pass: the
    counts stay in memory and land, once, with the next pass that can write."""
    app = await _gateway(tmp_path, clock, allow_private=True)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        state = app.state.podium
        admin = {"Authorization": app.state.new_admin_key}
        ep = (await http.post("/v1/endpoints", json={"name": "w"}, headers=admin)).json()
        for _ in range(3):
            await http.post(f"/v2/{ep['id']}/run", json={"input": {}}, headers=admin)
        state.store._db.execute("PRAGMA query_only = ON")
        await state.series.pass_once()  # samples the workers, then fails to write
        assert state.series.failures == 1 and len(state.metrics.series) == 1
        clock.advance(5)
        await state.series.pass_once()  # within 15 s of the last sample: no new one
        assert state.series.failures == 2
        state.store._db.execute("PRAGMA query_only = OFF")
        await state.series.pass_once()
        assert state.series.failures == 0 and len(state.metrics.series) == 0
        body = (await http.get(f"/v2/{ep['id']}/metrics", headers=admin)).json()
    assert body["totals"]["requests"]["total"] == 3
    assert body["workers"]["idle"][-1] == 0  # the sample taken while the store refused
