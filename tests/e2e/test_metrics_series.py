"""The Metrics tab's series with real gateways (`podium serve` processes) on one Redis:
jobs submitted on one gateway and finished on the other are counted once, both gateways
answer the same series, and a gateway that stops writes what it had counted."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL, drop_redis_prefix
from tests.e2e.conftest import Gateway, free_port, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


@contextlib.contextmanager
def _gateways(tmp_path: Path, *flush_s: str) -> Iterator[list[Gateway]]:
    """Gateways on one fresh Redis prefix, each writing its metrics every `flush_s`."""
    store = f"{REDIS_URL}?prefix=e2emx{uuid.uuid4().hex[:8]}"
    gws: list[Gateway] = []
    try:
        for name, flush in zip("ab", flush_s, strict=False):
            data = tmp_path / name
            data.mkdir()
            gw = Gateway(
                data_dir=data,
                port=free_port(),
                store=store,
                extra_args=["--no-supervisor"],  # workers by hand: the jobs are the subject
                env={"PODIUM_METRICS_FLUSH_S": flush},
            )
            gws.append(gw)  # listed first: a start that times out is still stopped
            gw.start()
        yield gws
    finally:
        for g in gws:
            g.stop()
        drop_redis_prefix(store)


def _run_on(submit: Gateway, finish: Gateway, ep: dict[str, Any], key: str, n: int) -> None:
    """n jobs submitted through `submit`, taken and finished through `finish` (one fails)."""
    worker = {"Authorization": ep["workerToken"]}
    with submit.client(key) as c, httpx.Client(base_url=finish.url, headers=worker) as w:
        for i in range(n):
            c.post(f"/v2/{ep['id']}/run", json={"input": {"i": i}}).raise_for_status()
            job = w.get(f"/v2/{ep['id']}/job-take/w1?hold=2").json()
            body = {"error": "boom"} if i == 0 else {"output": i}
            w.post(f"/v2/{ep['id']}/job-done/w1/{job['id']}", json=body).raise_for_status()


def _totals(gw: Gateway, ep: dict[str, Any], key: str) -> dict[str, int]:
    with gw.client(key) as c:
        r = c.get(f"/v2/{ep['id']}/metrics", params={"interval": "1h"})
        r.raise_for_status()
        return r.json()["totals"]["requests"]


def test_two_gateways_count_each_job_once(tmp_path):
    with _gateways(tmp_path, "0.5", "0.5") as (a, b):
        key = a.admin_key
        ep = a.create_endpoint(name="two-gateways")
        _run_on(a, b, ep, key, 6)  # submitted on a, ended on b
        _run_on(b, a, ep, key, 4)  # and the other way round
        want = {"total": 10, "completed": 8, "failed": 2}

        def both_agree() -> bool:
            seen = [_totals(g, ep, key) for g in (a, b)]
            return all({k: s[k] for k in want} == want for s in seen)

        wait_until(both_agree, timeout=20, what="both gateways' series to hold the 10 jobs")
        with a.client(key) as ca, b.client(key) as cb:
            sa = ca.get(f"/v2/{ep['id']}/metrics").json()
            sb = cb.get(f"/v2/{ep['id']}/metrics").json()
        assert sa["requests"] == sb["requests"]
        assert sa["totals"]["executionMs"]["p98"] is not None


def test_a_gateway_that_stops_writes_what_it_counted(tmp_path):
    """b writes only every 60 s: what it counted reaches the store when it stops."""
    with _gateways(tmp_path, "0.5", "60") as (a, b):
        key = a.admin_key
        ep = a.create_endpoint(name="stopping")
        _run_on(b, b, ep, key, 3)  # every event on b
        assert _totals(a, ep, key)["total"] == 0  # still in b's memory
        b.stop()  # SIGTERM: the writer's last flush
        assert _totals(a, ep, key) == {
            "total": 3,
            "completed": 2,
            "failed": 1,
            "cancelled": 0,
            "timedOut": 0,
            "retried": 0,
        }
