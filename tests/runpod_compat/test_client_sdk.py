"""The official `runpod` SDK (1.12.0), unmodified, as a CLIENT of a real Podium gateway.

Every SDK call runs in sdk_driver.py under .venv-runpod/bin/python with
RUNPOD_ENDPOINT_BASE_URL=<gateway>/v2; jobs are served by real RunPod SDK workers.
"""

from __future__ import annotations

from tests.e2e.conftest import Gateway, wait_until
from tests.runpod_compat.harness import (
    RUNPOD_MARKS,
    RunpodWorker,
    SdkDriver,
    get_status,
    health,
)

pytestmark = RUNPOD_MARKS


def chunks(n: int) -> list[dict]:
    return [{"i": i, "text": f"chunk-{i}"} for i in range(n)]


def test_run_status_output(sdk: SdkDriver, async_worker: RunpodWorker, client_key: str) -> None:
    r = sdk.ok(
        "run_status_output",
        endpoint=async_worker.endpoint_id,
        key=client_key,
        input={"mode": "echo", "value": "hello"},
    )
    assert r["first_status"] in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
    assert r["status"] == "COMPLETED"
    assert r["output"] == {"echo": "hello", "jobId": r["id"], "worker": async_worker.worker_id}


def test_run_full_request_with_global_api_key(
    gw: Gateway, sdk: SdkDriver, async_worker: RunpodWorker, client_key: str
) -> None:
    """`run({"input": ..., "policy": ...})` is posted as-is; the key comes from runpod.api_key."""
    r = sdk.ok(
        "run_status_output",
        endpoint=async_worker.endpoint_id,
        key=client_key,
        global_key=True,
        input={"input": {"mode": "echo", "value": [1, 2]}, "policy": {"executionTimeout": 60000}},
    )
    assert r["status"] == "COMPLETED"
    assert r["output"]["echo"] == [1, 2]
    st = get_status(gw, async_worker.endpoint_id, r["id"])
    assert st["workerId"] == async_worker.worker_id
    assert isinstance(st["delayTime"], int) and isinstance(st["executionTime"], int)


def test_run_sync(sdk: SdkDriver, async_worker: RunpodWorker, client_key: str) -> None:
    out = sdk.ok(
        "run_sync",
        endpoint=async_worker.endpoint_id,
        key=client_key,
        input={"mode": "echo", "value": {"nested": True}},
    )
    assert out["echo"] == {"nested": True}
    assert out["jobId"].startswith("sync-")
    assert out["worker"] == async_worker.worker_id


def test_wrong_key_is_reported_as_unauthorized(sdk: SdkDriver, async_worker: RunpodWorker) -> None:
    reply = sdk.call(
        "run_status_output", endpoint=async_worker.endpoint_id, key="pk_not-a-key", input={"x": 1}
    )
    assert not reply["ok"]
    assert reply["type"] == "RuntimeError"
    assert "401 Unauthorized" in reply["error"]


def test_stream_generator_chunks_in_order(
    sdk: SdkDriver, gen_plain_worker: RunpodWorker, client_key: str
) -> None:
    r = sdk.ok(
        "stream",
        endpoint=gen_plain_worker.endpoint_id,
        key=client_key,
        input={"n": 6, "delay": 0.25},
    )
    assert r["chunks"] == chunks(6)
    assert r["status"] == "COMPLETED"
    assert r["output"] == chunks(6)


def test_async_stream(sdk: SdkDriver, gen_aggregate_worker: RunpodWorker, client_key: str) -> None:
    r = sdk.ok(
        "async_stream",
        endpoint=gen_aggregate_worker.endpoint_id,
        key=client_key,
        input={"n": 4, "delay": 0.2},
    )
    assert r["chunks"] == chunks(4)
    assert r["status"] == "COMPLETED"


def test_cancel_queued_job(sdk: SdkDriver, idle_endpoint: str, client_key: str) -> None:
    r = sdk.ok(
        "cancel", endpoint=idle_endpoint, key=client_key, input={"x": 1}, cancel_when="IN_QUEUE"
    )
    assert r["cancel"] == {"id": r["id"], "status": "CANCELLED"}
    assert r["status"] == "CANCELLED"


def test_cancel_running_job(
    gw: Gateway, sdk: SdkDriver, async_worker: RunpodWorker, client_key: str
) -> None:
    args = {"endpoint": async_worker.endpoint_id, "key": client_key}
    (job_id,) = sdk.ok("submit", inputs=[{"mode": "sleep", "seconds": 30}], **args)
    # Cancel once the handler runs. A cancel that lands in the ~0.1 s between job-take and
    # the SDK creating the handler's task is lost today: the gateway delivers a stop once,
    # and runpod 1.12's stop_job() ignores ids it has no task for yet.
    started = async_worker.markers / f"started-{job_id}"
    wait_until(started.exists, timeout=20, what="the handler to start")
    r = sdk.ok("cancel_job", id=job_id, **args)
    assert r["cancel"] == {"id": job_id, "status": "CANCELLED"}
    assert r["status"] == "CANCELLED"
    # The cancel reached the handler through the worker's stop channel...
    stopped = async_worker.markers / f"stopped-{job_id}"
    wait_until(stopped.exists, timeout=10, what="the handler to be stopped")
    assert get_status(gw, async_worker.endpoint_id, job_id)["status"] == "CANCELLED"
    # ...and the worker serves the next job.
    out = sdk.ok("run_sync", input={"value": "next"}, **args)
    assert out["echo"] == "next"


def test_health_and_purge_queue(sdk: SdkDriver, idle_endpoint: str, client_key: str) -> None:
    args = {"endpoint": idle_endpoint, "key": client_key}
    ids = sdk.ok("submit", inputs=[{"n": 1}, {"n": 2}, {"n": 3}], **args)
    assert len(set(ids)) == 3
    h = sdk.ok("health", **args)
    assert h["jobs"]["inQueue"] == 3
    assert h["jobs"]["inProgress"] == 0
    assert set(h["workers"]) >= {
        "idle",
        "initializing",
        "ready",
        "running",
        "throttled",
        "unhealthy",
    }
    assert h["workers"]["ready"] == 0
    assert sdk.ok("purge_queue", **args) == {"removed": 3, "status": "completed"}
    assert sdk.ok("health", **args)["jobs"]["inQueue"] == 0
    assert sdk.ok("purge_queue", **args) == {"removed": 0, "status": "completed"}


def test_health_sees_the_worker(sdk: SdkDriver, sync_worker: RunpodWorker, client_key: str) -> None:
    h = sdk.ok("health", endpoint=sync_worker.endpoint_id, key=client_key)
    assert set(h["jobs"]) >= {"completed", "failed", "inProgress", "inQueue", "retried"}
    assert h["workers"]["ready"] >= 1
    assert h["workers"]["idle"] + h["workers"]["running"] == h["workers"]["ready"]


def test_asyncio_endpoint(
    gw: Gateway,
    sdk: SdkDriver,
    async_worker: RunpodWorker,
    idle_endpoint: str,
    client_key: str,
) -> None:
    r = sdk.ok(
        "async_flow",
        endpoint=async_worker.endpoint_id,
        queued_endpoint=idle_endpoint,
        key=client_key,
        input={"mode": "echo", "value": "via aiohttp"},
    )
    assert r["first_status"] in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
    assert r["status"] == "COMPLETED"
    assert r["output"] == {
        "echo": "via aiohttp",
        "jobId": r["id"],
        "worker": async_worker.worker_id,
    }
    assert r["health"]["workers"]["ready"] >= 1
    assert r["queued_status"] == "IN_QUEUE"
    assert r["cancel"]["status"] == "CANCELLED"
    assert r["cancelled_status"] == "CANCELLED"
    assert r["purge"] == {"removed": 1, "status": "completed"}
    assert health(gw, idle_endpoint)["jobs"]["inQueue"] == 0


def test_unknown_endpoint_is_an_http_error(sdk: SdkDriver, client_key: str) -> None:
    """A 404 reaches the caller as requests' HTTPError, not as a bogus job."""
    reply = sdk.call("submit", endpoint="no-such-endpoint", key=client_key, inputs=[{"x": 1}])
    assert not reply["ok"]
    assert reply["type"] == "HTTPError"
    assert "404" in reply["error"]
