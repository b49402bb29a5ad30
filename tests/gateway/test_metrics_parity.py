"""The metrics users ask for: P70/P90/P98 of delay and execution computable from /metrics
(as Prometheus' histogram_quantile computes them), cold starts per endpoint, webhook
deliveries by outcome."""

from __future__ import annotations

import asyncio
import math
import re

import httpx
import pytest

from podium.board import FleetReport, Phase, WorkerStatus
from tests.gateway.test_webhooks import Receiver, _gateway, _run_job

SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} (\S+)$")


def samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or m[1] != name:
            continue
        got = dict(kv.split("=", 1) for kv in m[2].split(","))
        got = {k: v.strip('"') for k, v in got.items()}
        if all(got.get(k) == v for k, v in labels.items()):
            out.append((got, float(m[3])))
    return out


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding the
    rank. `buckets`: (upper bound, cumulative count), sorted, ending with +Inf."""
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    raise AssertionError("unreachable")


def exact_quantile(q: float, values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def bucket_of(value: float, bounds: list[float]) -> tuple[float, float]:
    lower = 0.0
    for upper in bounds:
        if value <= upper:
            return lower, upper
        lower = upper
    return lower, math.inf


async def test_p70_p90_p98_of_delay_and_execution_come_out_of_metrics(api):
    delays = [0.02 * (i + 1) ** 1.5 for i in range(60)]  # 0.02 s … 9.3 s, skewed
    runs = [0.5 + 0.1 * ((i * 37) % 60) for i in range(60)]  # 0.5 s … 6.4 s
    for delay, run in zip(delays, runs, strict=True):
        job_id = (await api.run()).json()["id"]
        api.clock.advance(delay)
        assert (await api.take()).json()["id"] == job_id
        api.clock.advance(run)
        assert (await api.done(job_id, {"output": 1})).status_code == 200
    text = (await api.http.get("/metrics", headers=api.auth())).text
    for name, values in (
        ("podium_job_delay_seconds", delays),
        ("podium_job_execution_seconds", runs),
    ):
        rows = samples(text, f"{name}_bucket", endpoint=api.ep)
        buckets = sorted((float(lab["le"]), n) for lab, n in rows)
        assert buckets[-1] == (math.inf, 60)
        bounds = [b for b, _ in buckets[:-1]]
        for q in (0.7, 0.9, 0.98):
            exact = exact_quantile(q, values)
            lower, upper = bucket_of(exact, bounds)
            estimate = histogram_quantile(q, buckets)
            assert lower <= estimate <= upper, (name, q, exact, estimate)
            assert abs(estimate - exact) <= 0.35 * exact  # buckets are ~1.5x apart


def _status(worker: str, started: float | None, ready: float | None) -> WorkerStatus:
    return WorkerStatus(
        id=worker, endpoint_id="e", phase=Phase.READY, started_at=started, ready_at=ready
    )


async def test_cold_starts_are_counted_from_the_fleets_reports(api):
    fleet = api.state.fleet
    t = api.clock.now()
    report = {api.ep: [_status("w1", t, None), _status("w2", t, t + 3.0)]}
    for _ in range(2):  # the same report again counts nothing new
        fleet.publish(FleetReport(report, {}, None), t + 4)
    report = {api.ep: [_status("w1", t, t + 12.0), _status("w2", t, t + 3.0)]}
    fleet.publish(FleetReport(report, {}, None), t + 13)
    report = {api.ep: [_status("w2", t + 20, t + 21.5)]}  # w2 restarted: a new cold start
    fleet.publish(FleetReport(report, {}, None), t + 22)
    text = (await api.http.get("/metrics", headers=api.auth())).text
    assert samples(text, "podium_cold_starts_total", endpoint=api.ep)[0][1] == 3
    assert samples(text, "podium_cold_start_seconds_count", endpoint=api.ep)[0][1] == 3
    assert samples(text, "podium_cold_start_seconds_sum", endpoint=api.ep)[0][1] == pytest.approx(
        16.5
    )


@pytest.mark.parametrize(
    ("allow_private", "fail_first", "outcome"),
    [
        (True, 0, "delivered"),
        (True, 9, "failed"),
    ],
)
async def test_webhook_deliveries_by_outcome(tmp_path, clock, allow_private, fail_first, outcome):
    app = await _gateway(tmp_path, clock, allow_private=allow_private)
    async with (
        Receiver(fail_first) as rx,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        ep, _ = await _run_job(app, http, rx.url)
        admin = {"Authorization": app.state.new_admin_key}
        await asyncio.wait_for(app.state.podium.webhooks.join(), 10)  # delivery has ended
        text = (await http.get("/metrics", headers=admin)).text
    assert [
        (lab["outcome"], n)
        for lab, n in samples(text, "podium_webhook_deliveries_total", endpoint=ep["id"])
    ] == [(outcome, 1.0)]


async def test_a_refused_webhook_is_counted(tmp_path, clock):
    """A name that resolved publicly at submit may resolve privately at delivery."""
    from podium.gateway.webhooks import WebhookSender

    seen: list[tuple[str, str]] = []
    sender = WebhookSender(allow_private=False, on_outcome=lambda e, o: seen.append((e, o)))
    sender.start()
    try:
        sender.send("http://127.0.0.1:9/x", {"id": "j"}, "s", endpoint_id="ep")
        await asyncio.wait_for(sender.join(), 10)
    finally:
        await sender.stop()
    assert seen == [("ep", "refused")]
