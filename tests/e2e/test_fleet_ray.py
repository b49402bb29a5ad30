"""The fleet on a real Ray cluster (tests/ray_cluster.py: a head and two worker nodes of
two fake GPUs each, on 127.0.0.1): `podium serve --fleet ray` gateways on one Redis place
the workers of `custom` endpoints as Ray actors, scale them, survive the loss of a node
and of the gateway driving the fleet.

One cluster serves the whole module (starting one costs ~20 s); every test deletes its
endpoints, so the next starts from an empty cluster.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Gateway, free_port, wait_until
from tests.e2e.test_fleet import FINAL, SLEEPY, Fleet, Sampler
from tests.ray_cluster import RayCluster, ray_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.ray,
    pytest.mark.redis,
    pytest.mark.skipif(ray_available() is not None, reason=str(ray_available())),
]

REPO = Path(__file__).resolve().parents[2]
RUNPOD_PY = REPO / ".venv-runpod" / "bin" / "python"
RUNPOD_HANDLER = REPO / "tests" / "runpod_compat" / "handlers" / "sync_handler.py"
RAY_ARGS = ["--fleet", "ray", "--supervisor-tick-s", "0.2", "--take-hold-s", "2"]
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    c = RayCluster(workers=2, gpus_per_node=2)
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def redis_url() -> str:
    import redis

    try:
        redis.Redis(port=6379, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379 (make redis)")
    # A key prefix of our own on the shared Redis (db 0 is shared with other tests).
    return f"redis://127.0.0.1:6379/0?prefix=raytest-{uuid.uuid4().hex[:8]}"


def _gateway(tmp: Path, cluster: RayCluster, store: str, public_url: str | None = None) -> Gateway:
    gw = Gateway(
        data_dir=tmp,
        port=free_port(),
        store=store,
        extra_args=list(RAY_ARGS),
        env={"RAY_ADDRESS": cluster.address, "PODIUM_FLEET_LOCK_S": "3"},
    )
    if public_url:
        gw.env["PODIUM_PUBLIC_URL"] = public_url
    return gw


@pytest.fixture(scope="module")
def ray_gw(
    tmp_path_factory: pytest.TempPathFactory, cluster: RayCluster, redis_url: str
) -> Iterator[Gateway]:
    gw = _gateway(tmp_path_factory.mktemp("ray-gw"), cluster, redis_url).start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def fleet(ray_gw: Gateway) -> Iterator[Fleet]:
    f = Fleet(ray_gw)
    try:
        yield f
    finally:
        f.cleanup()
        wait_until(lambda: not _actors(f), timeout=TIMEOUT, what="every worker gone")
        f.http.close()


def _actors(f: Fleet) -> list[dict[str, Any]]:
    """Every worker the controller reports, of every endpoint it ever ran here."""
    body = f.http.get("/v1/endpoints").json()
    return [w for e in body for w in f.workers(e["id"])] if isinstance(body, list) else []


def _placed(f: Fleet, ep: str) -> list[dict[str, Any]]:
    return [w for w in f.workers(ep) if w["pid"] is not None]


def test_a_burst_spreads_over_the_nodes_one_gpu_each_and_scales_back_to_zero(
    fleet: Fleet, cluster: RayCluster
):
    ep = fleet.deploy(workersMax=4, idleTimeout=1, scalerType="REQUEST_COUNT", scalerValue=1)
    assert fleet.health(ep)["ready"] == 0
    seen: dict[str, tuple[str, tuple[int, ...]]] = {}
    with Sampler(fleet, ep) as sampler:
        jobs = [fleet.run(ep, seconds=2.0, value=i) for i in range(8)]

        def all_placed() -> bool:
            for w in _placed(fleet, ep):
                seen[w["id"]] = (w["node"], tuple(w["gpus"]))
            return len(seen) >= 4

        wait_until(all_placed, timeout=TIMEOUT, what="four workers placed")
        results = [fleet.final(ep, j, timeout=TIMEOUT) for j in jobs]
        wait_until(lambda: not fleet.workers(ep), timeout=TIMEOUT, what="scale to zero")
    assert [r["status"] for r in results] == ["COMPLETED"] * 8
    assert sampler.most_workers() == 4  # never above workersMax
    # Spread over both worker nodes, never two workers on one GPU of a node.
    holders = [(node, g) for node, gpus in seen.values() for g in gpus]
    assert len(holders) == len(set(holders)) == 4
    assert len({node for node, _ in holders}) == 2
    # Each worker saw the GPU Ray gave it.
    for r in results:
        node, gpus = seen[r["output"]["worker"]]
        assert r["output"]["cuda"] == ",".join(map(str, gpus))
        assert r["output"]["home"].endswith(r["output"]["worker"])
    assert fleet.health(ep) == dict.fromkeys(fleet.health(ep), 0)
