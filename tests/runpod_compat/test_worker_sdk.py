"""The official `runpod` SDK (1.12.0), unmodified, as a WORKER of a real Podium gateway.

Each handler program in handlers/ calls `runpod.serverless.start(...)` and is configured
only by the RUNPOD_* environment variables of PROTOCOL.md §2 (tests.e2e.conftest's
worker_env). Jobs are submitted and observed with httpx and the admin key.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import Gateway, wait_until
from tests.runpod_compat.harness import (
    RUNPOD_MARKS,
    RunpodWorker,
    cancel,
    get_status,
    submit,
    wait_final,
)

pytestmark = RUNPOD_MARKS


def chunks(n: int) -> list[dict]:
    return [{"i": i, "text": f"chunk-{i}"} for i in range(n)]


def read_stream(gw: Gateway, endpoint_id: str, job_id: str) -> dict:
    with gw.client() as c:
        r = c.get(f"/v2/{endpoint_id}/stream/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()


def run_to_end(gw: Gateway, worker: RunpodWorker, inp: dict, timeout: float = 20) -> dict:
    job_id = submit(gw, worker.endpoint_id, inp)
    st = wait_final(gw, worker.endpoint_id, job_id, timeout=timeout, worker=worker)
    assert st["id"] == job_id
    return st


def test_sync_handler(gw: Gateway, sync_worker: RunpodWorker) -> None:
    st = run_to_end(gw, sync_worker, {"mode": "echo", "value": "ünïcode ✓"})
    assert st["status"] == "COMPLETED", st
    assert st["output"] == {"echo": "ünïcode ✓", "jobId": st["id"], "worker": sync_worker.worker_id}
    assert st["workerId"] == sync_worker.worker_id
    assert st["delayTime"] >= 0 and st["executionTime"] >= 0
    assert "error" not in st


def test_async_handler(gw: Gateway, async_worker: RunpodWorker) -> None:
    st = run_to_end(gw, async_worker, {"mode": "echo", "value": {"a": [1, 2.5, None]}})
    assert st["status"] == "COMPLETED", st
    assert st["output"]["echo"] == {"a": [1, 2.5, None]}
    assert st["workerId"] == async_worker.worker_id


def test_generator_with_aggregate_stream(gw: Gateway, gen_aggregate_worker: RunpodWorker) -> None:
    w = gen_aggregate_worker
    st = run_to_end(gw, w, {"n": 5, "delay": 0.02})
    assert st["status"] == "COMPLETED", st
    assert st["output"] == chunks(5)
    first = read_stream(gw, w.endpoint_id, st["id"])
    assert first["status"] == "COMPLETED"
    assert first["stream"] == [{"output": c} for c in chunks(5)]
    assert read_stream(gw, w.endpoint_id, st["id"])["stream"] == []  # each chunk once


def test_generator_without_aggregate_stream(gw: Gateway, gen_plain_worker: RunpodWorker) -> None:
    """The SDK's final post is {"output": []}; the job's output is the streamed chunks."""
    w = gen_plain_worker
    job_id = submit(gw, w.endpoint_id, {"n": 4, "delay": 0.3})
    seen: list = []
    deadline = time.monotonic() + 20
    while True:  # read the stream while the job runs: chunks arrive in order, once each
        part = read_stream(gw, w.endpoint_id, job_id)
        seen += [c["output"] for c in part["stream"]]
        if part["status"] in {"COMPLETED", "FAILED"} and not part["stream"]:
            break
        assert time.monotonic() < deadline, (part, w.log_tail())
        time.sleep(0.1)
    assert part["status"] == "COMPLETED", part
    assert seen == chunks(4)
    st = get_status(gw, w.endpoint_id, job_id)
    assert st["output"] == chunks(4)


def test_generator_that_raises(gw: Gateway, gen_aggregate_worker: RunpodWorker) -> None:
    st = run_to_end(gw, gen_aggregate_worker, {"n": 5, "fail_after": 2})
    assert st["status"] == "FAILED", st
    assert "generator broke" in st["error"]
    streamed = read_stream(gw, gen_aggregate_worker.endpoint_id, st["id"])["stream"]
    assert streamed == [{"output": c} for c in chunks(2)]


def test_error_return(gw: Gateway, sync_worker: RunpodWorker) -> None:
    st = run_to_end(gw, sync_worker, {"mode": "error", "message": "bad input", "partial": 7})
    assert st["status"] == "FAILED", st
    assert st["error"] == "bad input"
    if "output" in st:  # the rest of the handler's dict, when kept
        assert st["output"] == {"partial": 7}


def test_raised_exception(gw: Gateway, sync_worker: RunpodWorker) -> None:
    st = run_to_end(gw, sync_worker, {"mode": "raise", "message": "boom"})
    assert st["status"] == "FAILED", st
    err = json.loads(st["error"])  # the SDK's JSON string, kept verbatim
    assert err["error_type"] == "<class 'ValueError'>"
    assert err["error_message"] == "boom"
    assert "Traceback" in err["error_traceback"] and "ValueError: boom" in err["error_traceback"]
    assert err["worker_id"] == sync_worker.worker_id
    assert err["runpod_version"] == "1.12.0"


def test_progress_update(gw: Gateway, sync_worker: RunpodWorker) -> None:
    w = sync_worker
    job_id = submit(gw, w.endpoint_id, {"mode": "progress"})

    def progress_seen() -> dict | None:
        st = get_status(gw, w.endpoint_id, job_id, wait_ms=200)
        assert st["status"] in {"IN_QUEUE", "IN_PROGRESS"}, (st, w.log_tail())
        if st["status"] == "IN_PROGRESS" and st.get("output") is not None:
            return st
        return None

    st = wait_until(progress_seen, timeout=20, interval=0.05, what="the progress update")
    assert st["output"] == {"step": 1, "of": 2}
    assert st["status"] == "IN_PROGRESS"
    (w.markers / f"release-{job_id}").touch()
    st = wait_final(gw, w.endpoint_id, job_id, worker=w)
    assert st["status"] == "COMPLETED", st
    assert st["output"] == {"released": True}


def test_refresh_worker_flag_in_a_handler_result(gw: Gateway, sync_worker: RunpodWorker) -> None:
    """A returned `refresh_worker` key becomes `stopPod` in the post, not part of the output;
    only the config-wide flag makes the SDK stop its loop, so this worker keeps serving."""
    st = run_to_end(gw, sync_worker, {"mode": "refresh", "value": 3})
    assert st["status"] == "COMPLETED", st
    assert st["output"] == {"value": 3}
    assert run_to_end(gw, sync_worker, {"mode": "echo", "value": 4})["output"]["echo"] == 4
    assert sync_worker.proc is not None and sync_worker.proc.poll() is None


def test_refresh_worker_exits_after_one_job(gw: Gateway, tmp_path: Path) -> None:
    """`refresh_worker: True`: the SDK posts the result with stopPod and its process exits,
    so a second queued job is left for another worker."""
    worker = RunpodWorker(gw, "refresh_handler.py", tmp_path / "refresh").start()
    try:
        worker.wait_ready()
        first = submit(gw, worker.endpoint_id, {"value": 1})
        second = submit(gw, worker.endpoint_id, {"value": 2})
        st = wait_final(gw, worker.endpoint_id, first, worker=worker)
        assert st["status"] == "COMPLETED", st
        assert st["output"] == {"echo": 1, "worker": worker.worker_id}
        assert worker.proc is not None
        assert worker.proc.wait(timeout=20) == 0, worker.log_tail()
        assert get_status(gw, worker.endpoint_id, second)["status"] == "IN_QUEUE"
        assert cancel(gw, worker.endpoint_id, second)["status"] == "CANCELLED"
    finally:
        worker.stop()


def test_cancel_reaches_the_running_handler(gw: Gateway, async_worker: RunpodWorker) -> None:
    w = async_worker
    job_id = submit(gw, w.endpoint_id, {"mode": "sleep", "seconds": 30})
    wait_until((w.markers / f"started-{job_id}").exists, timeout=20, what="the handler to start")
    assert get_status(gw, w.endpoint_id, job_id)["status"] == "IN_PROGRESS"
    assert cancel(gw, w.endpoint_id, job_id) == {"id": job_id, "status": "CANCELLED"}
    # job-stop told the SDK, which cancelled the handler's task.
    wait_until(
        (w.markers / f"stopped-{job_id}").exists, timeout=10, what="the stop channel to reach it"
    )
    assert not (w.markers / f"finished-{job_id}").exists()
    st = get_status(gw, w.endpoint_id, job_id)
    assert st["status"] == "CANCELLED", st
    # The worker is free again: the next job completes on it.
    nxt = run_to_end(gw, w, {"mode": "echo", "value": "after cancel"})
    assert nxt["status"] == "COMPLETED", nxt
    assert nxt["workerId"] == w.worker_id
    assert get_status(gw, w.endpoint_id, job_id)["status"] == "CANCELLED"


def test_execution_timeout_stops_the_handler(gw: Gateway, async_worker: RunpodWorker) -> None:
    """policy.executionTimeout (min 5 s): the job ends TIMED_OUT and the stop channel
    stops the handler, as for a cancel."""
    w = async_worker
    job_id = submit(
        gw, w.endpoint_id, {"mode": "sleep", "seconds": 30}, policy={"executionTimeout": 5000}
    )
    wait_until((w.markers / f"started-{job_id}").exists, timeout=20, what="the handler to start")
    st = wait_final(gw, w.endpoint_id, job_id, timeout=20, worker=w)
    assert st["status"] == "TIMED_OUT", st
    wait_until(
        (w.markers / f"stopped-{job_id}").exists, timeout=10, what="the stop channel to reach it"
    )
    nxt = run_to_end(gw, w, {"mode": "echo", "value": "after timeout"})
    assert nxt["status"] == "COMPLETED", nxt
    assert get_status(gw, w.endpoint_id, job_id)["status"] == "TIMED_OUT"


def test_worker_token_is_bound_to_its_endpoint(gw: Gateway, sync_worker: RunpodWorker) -> None:
    """The token the SDK sends raw in `Authorization` works only for its own endpoint."""
    other = gw.create_endpoint(name="rp-other")["id"]
    token = sync_worker.endpoint["workerToken"]
    url = f"{gw.url}/v2/{other}/job-take/{sync_worker.worker_id}?gpu=cpu&job_in_progress=0"
    r = httpx.get(url, headers={"Authorization": token}, timeout=10)
    assert r.status_code == 403, r.text
