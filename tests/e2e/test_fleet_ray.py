"""The fleet on a real Ray cluster (tests/ray_cluster.py: a head and two worker nodes of
two fake GPUs each, on 127.0.0.1): `podium serve --fleet ray` gateways on one Redis place
the workers of `custom` endpoints as Ray actors, scale them, survive the loss of a node
and of the gateway driving the fleet.

One cluster serves the whole session (tests/conftest.py `ray_cluster`); every test deletes
its endpoints, so the next starts from an empty cluster, and the node-loss test adds a
node back.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.settings import ADMIN_KEY_FILE
from tests.conftest import REDIS_URL, drop_redis_prefix
from tests.e2e.conftest import Gateway, free_port, wait_until
from tests.e2e.test_fleet import Fleet, Sampler
from tests.images import runpod_image, unavailable
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
TIMEOUT = 90.0


@pytest.fixture(scope="module")
def cluster(ray_cluster: RayCluster) -> RayCluster:
    return ray_cluster  # tests/conftest.py: one cluster for the session


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    url = f"{REDIS_URL}?prefix=ray{uuid.uuid4().hex[:8]}"  # keys of our own
    yield url
    drop_redis_prefix(url)


def _gateway(
    tmp: Path,
    cluster: RayCluster,
    store: str,
    public_url: str | None = None,
    namespace: str = "podium-test",
) -> Gateway:
    gw = Gateway(
        data_dir=tmp,
        port=free_port(),
        store=store,
        extra_args=list(RAY_ARGS),
        start_timeout=TIMEOUT,  # it imports ray: slow on a busy small machine
        env={
            "RAY_ADDRESS": cluster.address,
            "PODIUM_FLEET_LOCK_S": "3",
            "PODIUM_RAY_NAMESPACE": namespace,
        },
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
def fleet(ray_gw: Gateway, cluster: RayCluster) -> Iterator[Fleet]:
    f = Fleet(ray_gw)
    try:
        yield f
    finally:
        f.cleanup()  # deletes the endpoints: their workers drain and their actors end
        f.http.close()
        _all_gpus_free(cluster)


def _all_gpus_free(cluster: RayCluster) -> None:
    total = cluster.gpus_per_node * cluster.workers
    wait_until(
        lambda: cluster.free_gpus() == total, timeout=TIMEOUT, interval=0.5, what="GPUs free"
    )


def _managed(f: Fleet, ep: str) -> list[dict[str, Any]]:
    """The workers this gateway's fleet runs (not those it only saw pinging)."""
    return [w for w in f.workers(ep) if w["managed"]]


def _placed(f: Fleet, ep: str) -> list[dict[str, Any]]:
    return [w for w in _managed(f, ep) if w["pid"] is not None]


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
        wait_until(lambda: not _managed(fleet, ep), timeout=TIMEOUT, what="scale to zero")
    assert [r["status"] for r in results] == ["COMPLETED"] * 8
    assert sampler.most_workers() == 4  # never above workersMax
    # Spread over both worker nodes, never two workers on one GPU of a node.
    holders = [(node, g) for node, gpus in seen.values() for g in gpus]
    assert len(holders) == len(set(holders)) == 4
    assert len({node for node, _ in holders}) == 2
    # Each worker saw the GPU Ray gave it.
    for r in results:
        _, gpus = seen[r["output"]["worker"]]
        assert r["output"]["cuda"] == ",".join(map(str, gpus))
        assert r["output"]["home"].endswith(r["output"]["worker"])
    assert fleet.health(ep) == dict.fromkeys(fleet.health(ep), 0)


def test_gpus_lists_every_nodes_gpus_and_their_holders(fleet: Fleet, cluster: RayCluster):
    ep = fleet.deploy(workersMin=1, workersMax=1)
    wait_until(lambda: fleet.health(ep)["idle"] == 1, timeout=TIMEOUT, what="worker ready")
    body = fleet.http.get("/v1/gpus").json()
    assert body["source"] == "ray" and body["supervisor"] is True
    gpus = body["gpus"]
    assert len(gpus) == 4 and len({g["node"] for g in gpus}) == 2
    assert {g["name"] for g in gpus} == {cluster.gpu_type}
    assert {g["memoryMb"] for g in gpus} == {cluster.gpu_memory_mb}
    (w,) = _managed(fleet, ep)
    held = [g for g in gpus if g["worker"] is not None]
    assert [(g["node"], g["index"], g["worker"]) for g in held] == [
        (w["node"], w["gpus"][0], w["id"])
    ]


def test_more_gpus_than_the_cluster_has_throttles_the_extras_and_all_jobs_complete(
    fleet: Fleet,
):
    ep = fleet.deploy(workersMax=6, idleTimeout=1, scalerType="REQUEST_COUNT", scalerValue=1)
    jobs = [fleet.run(ep, seconds=3.0, value=i) for i in range(6)]
    reasons: list[str] = []

    def throttled() -> bool:
        ws = _managed(fleet, ep)
        reasons[:] = [w["reason"] for w in ws if w["phase"] == "throttled"]
        return len(_placed(fleet, ep)) == 4 and len(reasons) == 2

    wait_until(throttled, timeout=TIMEOUT, what="four placed, two throttled")
    assert fleet.health(ep)["throttled"] == 2
    assert all("GPU" in r and "waits" in r for r in reasons), reasons
    results = [fleet.final(ep, j, timeout=TIMEOUT) for j in jobs]
    assert [r["status"] for r in results] == ["COMPLETED"] * 6
    wait_until(lambda: not _managed(fleet, ep), timeout=TIMEOUT, what="scale to zero")


def test_a_worker_that_cannot_start_is_unhealthy_with_its_reason(fleet: Fleet):
    cannot = (
        f'{sys.executable} -c "import sys; '
        "print('podium.worker: cannot start: no model here', file=sys.stderr); "
        'sys.exit(78)"'
    )
    ep = fleet.deploy(command=cannot, workersMin=1, workersMax=1)
    wait_until(lambda: fleet.health(ep)["unhealthy"] == 1, timeout=TIMEOUT, what="unhealthy")
    (w,) = _managed(fleet, ep)
    assert w["restarts"] == 0 and w["exitCode"] == 78
    assert "no model here" in w["reason"]
    # its output came from the node to the store: `podium logs` shows it
    wait_until(lambda: "exited with code 78" in fleet.logs(ep), timeout=TIMEOUT, what="logs")
    assert "no model here" in fleet.logs(ep)


def test_kill_9_of_a_node_mid_job_the_job_completes_elsewhere(fleet: Fleet, cluster: RayCluster):
    ep = fleet.deploy(workersMin=1, workersMax=1)
    wait_until(lambda: fleet.health(ep)["idle"] == 1, timeout=TIMEOUT, what="worker ready")
    (before,) = _managed(fleet, ep)
    job = fleet.run(ep, seconds=4.0, value="survives")
    wait_until(lambda: fleet.status(ep, job)["status"] == "IN_PROGRESS", what="job running")
    (node,) = [n for n in cluster.worker_nodes() if _parent(before["pid"]) in n.pids()]
    node.kill9()
    try:
        result = fleet.final(ep, job, timeout=TIMEOUT)
        assert result["status"] == "COMPLETED" and result["output"]["echo"] == "survives"
        assert result["retries"] == 1
        (after,) = _managed(fleet, ep)
        assert after["restarts"] == 1 and after["node"] != before["node"]
    finally:  # the next tests get two worker nodes again
        cluster.add_worker(f"{node.name}-again")
        cluster.wait_nodes(3)


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.mark.runpod
def test_a_load_balancing_worker_on_a_ray_node_is_reached_at_its_node_address(
    fleet: Fleet,
) -> None:
    """A LOAD_BALANCER endpoint's worker runs in a slot actor on a node; the gateway's
    health checks and requests go to that node's address (Slot.address), where the app
    listens on every interface (BIND_HOST), as servers in images do."""
    ep = fleet.deploy(
        type="LOAD_BALANCER",
        command=f"{sys.executable} {REPO / 'tests' / 'lb_app.py'}",
        workersMax=1,
        env={"BIND_HOST": "0.0.0.0"},
    )
    r = fleet.http.post(f"/lb/{ep}/generate", json={"on": "ray"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["echo"] == {"on": "ray"}
    # the proxy may route to a worker a moment before the fleet's report shows it ready
    (w,) = wait_until(
        lambda: [x for x in _managed(fleet, ep) if x.get("health") == "ready"],
        timeout=TIMEOUT,
        what="the worker shown ready",
    )
    assert w["id"] == r.json()["worker"] == r.headers["x-runpod-worker-id"] and w["node"]


def test_an_unmodified_runpod_sdk_worker_serves_jobs_on_ray(fleet: Fleet, tmp_path: Path):
    if not RUNPOD_PY.exists():
        pytest.skip(f"the runpod SDK venv is missing ({RUNPOD_PY})")
    ep = fleet.deploy(
        command=f"{RUNPOD_PY} {RUNPOD_HANDLER}",
        workersMax=1,
        env={"PODIUM_TEST_MARKERS": str(tmp_path)},
    )
    job = fleet.http.post(f"/v2/{ep}/run", json={"input": {"mode": "echo", "value": 42}}).json()
    result = fleet.final(ep, job["id"], timeout=TIMEOUT)
    assert result["status"] == "COMPLETED", result
    (w,) = _managed(fleet, ep)
    assert result["output"] == {"echo": 42, "jobId": job["id"], "worker": w["id"]}
    assert w["node"] and w["gpus"]


def test_a_gateway_drives_the_fleet_through_ray_client(tmp_path: Path, cluster: RayCluster):
    """`--fleet ray://HOST:PORT`: a gateway that is no node of the cluster."""
    store = f"{REDIS_URL}?prefix=rayc{uuid.uuid4().hex[:8]}"
    gw = _gateway(tmp_path / "c", cluster, store, namespace="podium-client")
    gw.extra_args[gw.extra_args.index("ray")] = cluster.client_address
    gw.env.pop("RAY_ADDRESS")
    gw.data_dir.mkdir()
    gw.start()
    f = Fleet(gw)
    try:
        ep = f.deploy(workersMax=1)
        result = f.final(ep, f.run(ep, seconds=0.1, value="via client"), timeout=TIMEOUT)
        assert result["status"] == "COMPLETED" and result["output"]["echo"] == "via client"
        (w,) = _managed(f, ep)
        assert w["node"] and w["gpus"]
        assert f.http.get("/v1/gpus").json()["source"] == "ray"
    finally:
        try:
            f.cleanup()
            _all_gpus_free(cluster)
        finally:
            f.http.close()
            gw.stop()
            drop_redis_prefix(store)


def test_two_gateways_kill_9_of_the_controller_the_other_adopts_its_workers(
    tmp_path: Path, cluster: RayCluster
):
    """Two gateways on one Redis (a store and a Ray namespace of their own, apart from
    `ray_gw`): the first drives the fleet, the second stands by. Workers reach the
    gateways through the public URL: a load balancer in production, here the standby
    (which stays up)."""
    store = f"{REDIS_URL}?prefix=ray2{uuid.uuid4().hex[:8]}"
    standby_port = free_port()
    public = f"http://127.0.0.1:{standby_port}"
    first = _gateway(tmp_path / "a", cluster, store, public, namespace="podium-two")
    second = _gateway(tmp_path / "b", cluster, store, public, namespace="podium-two")
    second.port = standby_port
    for gw in (first, second):
        gw.data_dir.mkdir()
    first.start()
    shutil.copy(first.data_dir / ADMIN_KEY_FILE, second.data_dir / ADMIN_KEY_FILE)
    second.start()
    fa, fb = Fleet(first), Fleet(second)
    ep = ""
    try:
        ep = fa.deploy(workersMin=2, workersMax=2)
        fb.created, fa.created = fa.created, []  # the survivor deletes it at the end
        wait_until(lambda: fb.health(ep)["idle"] == 2, timeout=TIMEOUT, what="two workers")
        before = {w["id"]: w["pid"] for w in _placed(fa, ep)}
        assert len(before) == 2 and _managed(fb, ep) == []  # the standby runs nothing
        jobs = [fb.run(ep, seconds=1.0, value=i) for i in range(4)]
        first.kill9()
        wait_until(
            lambda: {w["id"]: w["pid"] for w in _placed(fb, ep)} == before,
            timeout=TIMEOUT,
            what="the standby adopted the same workers",
        )
        jobs += [fb.run(ep, seconds=0.2, value=i) for i in range(4, 8)]
        results = [fb.final(ep, j, timeout=TIMEOUT) for j in jobs]
        assert [r["status"] for r in results] == ["COMPLETED"] * 8
        assert {r["output"]["worker"] for r in results} <= set(before)
        assert {w["id"] for w in _managed(fb, ep)} == set(before)  # no duplicates
    finally:
        try:
            if ep:
                fb.cleanup()
                _all_gpus_free(cluster)
        finally:
            fb.http.close()
            fa.http.close()
            second.stop()
            first.stop()
            drop_redis_prefix(store)


@pytest.mark.containers
def test_a_container_worker_runs_on_a_ray_node(fleet: Fleet, cluster: RayCluster) -> None:
    """The slot actor runs the image through its node's engine (Podman here), with the
    same RUNPOD_* environment as a process: an unmodified runpod SDK image serves a job."""
    reason = unavailable()
    if reason is not None:
        pytest.fail(f"container tests need Podman here: {reason} (make test installs it)")
    image = runpod_image()
    r = fleet.http.post(
        "/v1/endpoints",
        json={"name": "ray-image", "imageName": image, "gpuCount": 0, "workersMax": 1},
    )
    assert r.status_code == 200, r.text
    ep = r.json()["id"]
    fleet.created.append(ep)
    job = fleet.http.post(f"/v2/{ep}/run", json={"input": {"on": "ray"}}).json()["id"]
    final = fleet.final(ep, job, timeout=TIMEOUT)
    assert final["status"] == "COMPLETED" and final["output"]["echo"] == {"on": "ray"}
    [worker] = _managed(fleet, ep)
    assert worker["id"] == final["output"]["worker"]
    assert worker["node"] in cluster.node_ids()  # a Ray node (its actor's), not this host


def test_a_flashboot_worker_is_restored_on_its_node(fleet: Fleet) -> None:
    """Snapshots on Ray (docs/snapshots.md): the slot actor checkpoints its worker on its
    node; the next cold start there restores it, a new worker."""
    from podium.fleet.snapshots import find_criu

    if find_criu() is None:
        pytest.skip("snapshots need root and CRIU >= 4 (tools/build-criu.sh; make test)")
    ep = fleet.deploy(flashboot=True, gpuCount=0, workersMin=1, workersMax=1, idleTimeout=1)
    wait_until(lambda: "snapshot" in fleet.logs(ep) and "taken" in fleet.logs(ep),
               timeout=TIMEOUT, what="the snapshot taken")  # fmt: skip
    (first,) = _managed(fleet, ep)
    fleet.http.patch(f"/v1/endpoints/{ep}", json={"workersMin": 0}).raise_for_status()
    wait_until(lambda: not _managed(fleet, ep), timeout=TIMEOUT, what="no workers")
    fleet.http.patch(f"/v1/endpoints/{ep}", json={"workersMin": 1}).raise_for_status()

    def restored() -> dict[str, Any] | None:
        ws = [w for w in _placed(fleet, ep) if w.get("startedFrom") == "snapshot"]
        return ws[0] if ws else None

    try:
        worker = wait_until(restored, timeout=TIMEOUT, what="a restored worker")
    except AssertionError as exc:
        said = f"{exc}; workers {fleet.workers(ep)}; their log:\n{fleet.logs(ep)}"
        raise AssertionError(said) from None
    assert worker["id"] != first["id"] and worker["restoreSeconds"] > 0
    result = fleet.final(ep, fleet.run(ep, seconds=0.1, value=5), timeout=TIMEOUT)
    assert result["status"] == "COMPLETED", result
    assert result["output"]["echo"] == 5 and result["output"]["worker"] == result["workerId"]
