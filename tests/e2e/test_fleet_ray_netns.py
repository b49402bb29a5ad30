"""A Ray worker node on a test host of our own (tests/netns.py: a network namespace on a
veth link, its default route over that link) joins a real Ray cluster (tests/ray_cluster.py:
a head and one worker node on this machine) and runs a job of a `podium serve --fleet ray`
gateway. The link is cut mid-job: the job comes back through its lease (retries 1) and
completes on the other node.

The cluster listens on this machine's LAN address, which the test host reaches only over
its link; the gateway listens on every address (its public URL is the LAN one), so that
workers on both nodes reach it. Skips where Ray or network namespaces are unavailable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Gateway, free_port, wait_until
from tests.e2e.test_fleet import FINAL, SLEEPY
from tests.netns import NetnsHost, netns_host
from tests.ray_cluster import OBJECT_STORE_BYTES, RAY, RayCluster, ray_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.ray,
    pytest.mark.timeout(600),  # a cluster of its own: ~1.5 min here, more on a busy machine
    pytest.mark.skipif(ray_available() is not None, reason=str(ray_available())),
]

TIMEOUT = 90.0
JOB_SECONDS = 8.0  # long enough to cut the link while the job runs
NODE_ID = """
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(json.dumps({n["NodeManagerAddress"]: [n["NodeID"], n["Alive"]] for n in ray.nodes()}))
"""


@contextmanager
def cluster_with_a_node_on(host: NetnsHost) -> Iterator[tuple[RayCluster, subprocess.Popen]]:
    """The head and one worker node here (one fake GPU), and one inside the test host
    (one fake GPU of the same type), joined over the link."""
    cluster = RayCluster(workers=1, gpus_per_node=1)
    try:
        cluster.start()
        assert cluster.temp_dir is not None
        if cluster.address.startswith("127."):
            pytest.skip(
                f"the Ray cluster listens on loopback ({cluster.address}): a test host "
                "cannot reach it (tests/ray_cluster.py must use this machine's address)"
            )
        log = cluster.temp_dir / "netns-node.log"
        with log.open("ab") as log_out:  # the child keeps its own descriptor
            node = host.popen(
                [
                    RAY,
                    "start",
                    "--block",
                    "--disable-usage-stats",
                    f"--address={cluster.address}",
                    f"--node-ip-address={host.ns_addr}",
                    f"--object-store-memory={OBJECT_STORE_BYTES}",
                    "--num-cpus=2",
                    "--num-gpus=1",
                    f'--resources={{"{cluster.gpu_resource}": 1}}',
                ],
                stdout=log_out,
                stderr=subprocess.STDOUT,
                env=cluster.env(),
                cwd=cluster.temp_dir,
            )

        def joined() -> bool:
            if node.poll() is not None:
                raise AssertionError(f"the namespace's Ray node exited: {log.read_text()}")
            return cluster.alive_nodes() >= 3

        wait_until(joined, timeout=TIMEOUT, interval=0.5, what="the namespace's Ray node")
        yield cluster, node
    finally:
        cluster.stop()


def ray_nodes(cluster: RayCluster) -> dict[str, tuple[str, bool]]:
    """Node address -> (Ray node id, alive)."""
    out = subprocess.run(
        [sys.executable, "-c", NODE_ID, cluster.address],
        capture_output=True,
        text=True,
        timeout=60,
        env=cluster.env(),
        check=True,
    )
    return {k: (v[0], v[1]) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def workers(http: httpx.Client, ep: str) -> list[dict[str, Any]]:
    return http.get(f"/v1/endpoints/{ep}/workers").json()["workers"]


def test_a_job_on_a_node_whose_link_is_cut_completes_on_another_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with netns_host(route_all=True) as host, cluster_with_a_node_on(host) as (cluster, _):
        lan = cluster.address.rsplit(":", 1)[0]
        inside, _alive = ray_nodes(cluster)[host.ns_addr]
        port = free_port()
        monkeypatch.setenv("RAY_ADDRESS", cluster.address)  # the gateway's environment
        gw = Gateway(
            data_dir=tmp_path / "gw",
            port=port,
            extra_args=[
                *("--fleet", "ray", "--supervisor-tick-s", "0.2", "--take-hold-s", "2"),
                # Workers on both nodes reach it at the LAN address (the test host's over
                # its link): it listens on every address.
                *("--host", "0.0.0.0", "--public-url", f"http://{lan}:{port}"),
            ],
        )
        gw.data_dir.mkdir()
        gw.start()
        try:
            with gw.client() as http:
                r = http.post(
                    "/v1/endpoints",
                    json={
                        "name": "netns",
                        "templateId": "custom",
                        "command": SLEEPY,
                        "workersMin": 2,
                        "workersMax": 2,
                        "idleTimeout": 600,
                    },
                )
                assert r.status_code == 200, r.text
                ep = r.json()["id"]

                # 1. One worker on each GPU node: one of them inside the test host.
                def both_up() -> list[dict[str, Any]] | None:
                    ws = [w for w in workers(http, ep) if w["status"] == "idle" and w["managed"]]
                    return ws if len(ws) == 2 else None

                up = wait_until(both_up, timeout=TIMEOUT, interval=0.2, what="two idle workers")
                [lost] = [w["id"] for w in up if w["node"] == inside]
                [other] = [w["id"] for w in up if w["node"] != inside]

                # 2. Two long jobs: each worker holds one.
                jobs = [
                    http.post(
                        f"/v2/{ep}/run", json={"input": {"seconds": JOB_SECONDS, "value": i}}
                    ).json()["id"]
                    for i in range(2)
                ]

                def held() -> dict[str, list[str]] | None:
                    by = {w["id"]: w["jobs"] for w in workers(http, ep)}
                    return by if by.get(lost) and by.get(other) else None

                holding = wait_until(held, timeout=TIMEOUT, interval=0.1, what="both jobs held")
                [cut_job] = holding[lost]

                # 3. Pull the cable while the job runs there.
                host.cut()

                def final(job: str) -> dict[str, Any] | None:
                    s = http.get(f"/v2/{ep}/status/{job}", params={"wait": 1000}).json()
                    return s if s["status"] in FINAL else None

                done = {j: wait_until(lambda j=j: final(j), timeout=TIMEOUT * 2) for j in jobs}
                assert {s["status"] for s in done.values()} == {"COMPLETED"}, done
                # The cut node's job came back through its lease and ran on the other node.
                assert done[cut_job]["retries"] == 1
                assert done[cut_job]["workerId"] != lost
                assert done[cut_job]["output"]["worker"] == done[cut_job]["workerId"]
                [kept] = [j for j in jobs if j != cut_job]
                assert done[kept]["retries"] == 0 and done[kept]["workerId"] == other
                # Ray declares the unreachable node dead; the fleet no longer counts its
                # worker as ready.
                wait_until(
                    lambda: not ray_nodes(cluster)[host.ns_addr][1],
                    timeout=TIMEOUT,
                    interval=0.5,
                    what="Ray to declare the cut node dead",
                )
                wait_until(
                    lambda: all(
                        w["status"] not in ("idle", "running")
                        for w in workers(http, ep)
                        if w["id"] == lost
                    ),
                    timeout=TIMEOUT,
                    what=f"worker {lost} no longer ready",
                )
        finally:
            gw.stop()
