"""The worker runtime against a real gateway: real worker processes, tiny fixture handlers
(tests/e2e/handlers/), jobs submitted through the client API."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Gateway, wait_until, worker_env

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
SECRET = "do-not-log-7f3a9"  # put in inputs; must never show up in worker logs


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    log_path: Path
    worker_id: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exit_code(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker still running; log:\n{self.log()[-3000:]}") from None


@dataclass
class Fleet:
    """Starts worker processes for one endpoint; kills every one of them at teardown."""

    gateway: Gateway
    endpoint: dict[str, Any]
    tmp: Path
    procs: list[WorkerProc] = field(default_factory=list)

    def start(self, *args: str, worker_id: str = "w1", **env: str) -> WorkerProc:
        """`args`: a handler spec for `python -m podium.worker`, or the arguments of
        `python` itself (a script path, or `-m module ...`)."""
        direct = args[0].endswith(".py") or args[0] == "-m"
        cmd = [sys.executable, *args] if direct else [sys.executable, "-m", "podium.worker", *args]
        log_path = self.tmp / f"worker-{worker_id}.log"
        environ = {
            **worker_env(self.gateway, self.endpoint, worker_id, self.tmp / "home"),
            # Short long-polls: the gateway keeps holding a take after its worker is gone,
            # and its graceful stop waits for that request (see the report).
            "PODIUM_WORKER_TAKE_HOLD_S": "1",
            **env,
        }
        with log_path.open("ab") as log_out:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                cmd, cwd=REPO, env=environ, stdout=log_out, stderr=subprocess.STDOUT
            )
        worker = WorkerProc(proc, log_path, worker_id)
        self.procs.append(worker)
        return worker

    def close(self) -> None:
        for w in self.procs:
            if w.proc.poll() is None:
                w.proc.kill()
            w.proc.wait(10)


@dataclass
class Api:
    """The client API of one endpoint, as a RunPod client would call it."""

    client: httpx.Client
    endpoint_id: str

    def run(self, inp: dict[str, Any], **extra: Any) -> str:
        r = self.client.post(f"/v2/{self.endpoint_id}/run", json={"input": inp, **extra})
        r.raise_for_status()
        return r.json()["id"]

    def status(self, job_id: str, wait_ms: int | None = None) -> dict[str, Any]:
        params = {"wait": wait_ms} if wait_ms is not None else None
        r = self.client.get(f"/v2/{self.endpoint_id}/status/{job_id}", params=params)
        r.raise_for_status()
        return r.json()

    def final(self, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status(job_id, wait_ms=2000)
            if s["status"] in FINAL:
                return s
        raise AssertionError(f"job {job_id} not final after {timeout} s: {s}")

    def in_progress(self, job_id: str, timeout: float = 10.0) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.status(job_id))["status"] == "IN_PROGRESS" and s,
            timeout=timeout,
            what=f"job {job_id} IN_PROGRESS",
        )

    def stream(self, job_id: str) -> dict[str, Any]:
        r = self.client.get(f"/v2/{self.endpoint_id}/stream/{job_id}")
        r.raise_for_status()
        return r.json()

    def cancel(self, job_id: str) -> dict[str, Any]:
        r = self.client.post(f"/v2/{self.endpoint_id}/cancel/{job_id}")
        r.raise_for_status()
        return r.json()


@pytest.fixture
def endpoint(gateway: Gateway) -> dict[str, Any]:
    return gateway.create_endpoint()


@pytest.fixture
def api(gateway: Gateway, endpoint: dict[str, Any]) -> Iterator[Api]:
    with gateway.client() as client:
        yield Api(client, endpoint["id"])


@pytest.fixture
def fleet(gateway: Gateway, endpoint: dict[str, Any], tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(gateway, endpoint, tmp_path)
    try:
        yield f
    finally:
        f.close()


def assert_timings(s: dict[str, Any]) -> None:
    assert isinstance(s["delayTime"], int) and s["delayTime"] >= 0
    assert isinstance(s["executionTime"], int) and s["executionTime"] >= 0


# --- handler conventions ---------------------------------------------------------------


def test_sync_handler_completes_and_logs_no_job_data(fleet: Fleet, api: Api) -> None:
    worker = fleet.start("tests.e2e.handlers.basic:echo")
    job_id = api.run({"prompt": SECRET})
    s = api.final(job_id)
    assert s["status"] == "COMPLETED"
    assert s["output"] == {"echo": {"prompt": SECRET}, "worker": "w1"}
    assert s["workerId"] == "w1" and s["retries"] == 0
    assert_timings(s)
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.exit_code() == 0
    log = worker.log()
    assert f"job {job_id} started" in log and f"job {job_id} COMPLETED in" in log
    assert SECRET not in log


def test_async_handler_loaded_from_a_file_path(fleet: Fleet, api: Api) -> None:
    fleet.start("tests/e2e/handlers/asynchronous.py:echo")
    s = api.final(api.run({"x": 1}))
    assert s["status"] == "COMPLETED"
    assert s["output"] == {"echo": {"x": 1}, "async": True}
    assert_timings(s)


def test_generator_streams_chunks_while_running(fleet: Fleet, api: Api) -> None:
    fleet.start("tests.e2e.handlers.streaming:gen")
    job_id = api.run({"n": 3, "pause": 0.3})
    first = wait_until(lambda: (r := api.stream(job_id))["stream"] and r, what="a first chunk")
    assert first["status"] == "IN_PROGRESS"
    assert first["stream"][0] == {"output": {"i": 0}}
    s = api.final(job_id)
    assert s["status"] == "COMPLETED"
    assert s["output"] == [{"i": 0}, {"i": 1}, {"i": 2}]
    rest = api.stream(job_id)
    assert [c["output"] for c in first["stream"] + rest["stream"]] == s["output"]


def test_async_generator_with_aggregation_through_start(fleet: Fleet, api: Api) -> None:
    # `python handler.py` calling podium.worker.start({...}), as RunPod worker images do.
    worker = fleet.start("tests/e2e/handlers/streaming.py")
    job_id = api.run({"n": 4})
    s = api.final(job_id)
    assert s["status"] == "COMPLETED"
    assert s["output"] == ["token-0", "token-1", "token-2", "token-3"]
    worker.proc.send_signal(signal.SIGINT)
    assert worker.exit_code() == 0


def test_generator_that_raises_fails_the_job(fleet: Fleet, api: Api) -> None:
    fleet.start("tests.e2e.handlers.streaming:gen_raises")
    s = api.final(api.run({}))
    assert s["status"] == "FAILED"
    assert json.loads(s["error"])["error_message"] == "generator broke"


def test_returned_error_fails_with_the_rest_as_output(fleet: Fleet, api: Api) -> None:
    fleet.start("tests.e2e.handlers.basic:returns_error")
    s = api.final(api.run({}))
    assert s["status"] == "FAILED"
    assert s["error"] == "the prompt is too long"
    assert s["output"] == {"partial": 1}
    assert_timings(s)


def test_raised_exception_fails_with_the_sdk_error_json(fleet: Fleet, api: Api) -> None:
    worker = fleet.start("tests.e2e.handlers.basic:raises")
    s = api.final(api.run({"why": SECRET}))
    assert s["status"] == "FAILED"
    error = json.loads(s["error"])
    assert error["error_type"] == "<class 'ValueError'>"
    assert error["error_message"] == f"boom: {SECRET}"
    assert "ValueError" in error["error_traceback"]
    assert error["error_traceback"].startswith("Traceback")
    assert "podium/worker" not in error["error_traceback"]  # the handler's frames only
    assert error["worker_id"] == "w1"
    assert error["hostname"]
    assert SECRET not in worker.log()


def test_output_json_cannot_carry_fails_the_job(fleet: Fleet, api: Api) -> None:
    fleet.start("tests.e2e.handlers.basic:not_json")
    s = api.final(api.run({}))
    assert s["status"] == "FAILED"
    assert "not JSON-serializable" in s["error"]


def test_progress_is_shown_as_output_while_in_progress(
    fleet: Fleet, api: Api, tmp_path: Path
) -> None:
    fleet.start("tests.e2e.handlers.basic:progress")
    go = tmp_path / "go"
    job_id = api.run({"go": str(go)})
    s = wait_until(
        lambda: (s := api.status(job_id, wait_ms=1000)).get("output") and s, what="progress"
    )
    assert s["status"] == "IN_PROGRESS"
    assert s["output"] == {"step": 1, "steps": 2}
    go.touch()
    s = api.final(job_id)
    assert s["status"] == "COMPLETED" and s["output"] == "done"


@pytest.mark.parametrize("how", ["returned", "cli flag"])
def test_refresh_worker_exits_after_the_job(
    fleet: Fleet, api: Api, gateway: Gateway, endpoint: dict[str, Any], how: str
) -> None:
    if how == "returned":  # the handler returns {"refresh_worker": True, ...}
        worker = fleet.start("tests.e2e.handlers.basic:refresh")
        expected: Any = {"x": 1}
    else:  # `podium worker` with URLs derived from --gateway, and PODIUM_WORKER_REFRESH
        worker = fleet.start(
            "-m",
            "podium.cli",
            "worker",
            "tests.e2e.handlers.basic:echo",
            "--gateway",
            gateway.url,
            "--endpoint",
            endpoint["id"],
            "--token",
            endpoint["workerToken"],
            RUNPOD_WEBHOOK_GET_JOB="",
            PODIUM_WORKER_REFRESH="true",
        )
        expected = {"echo": {}, "worker": "w1"}
    s = api.final(api.run({}))
    assert s["status"] == "COMPLETED" and s["output"] == expected
    assert worker.exit_code() == 0
    second = api.run({})
    assert api.status(second, wait_ms=300)["status"] == "IN_QUEUE"


# --- stop channel ----------------------------------------------------------------------


def test_cancel_reaches_a_sync_handler_and_the_worker_takes_the_next_job(
    fleet: Fleet, api: Api, tmp_path: Path
) -> None:
    worker = fleet.start("tests.e2e.handlers.basic:sleeper")
    marker = tmp_path / "cancelled"
    job_id = api.run({"seconds": 30, "marker": str(marker)})
    api.in_progress(job_id)
    assert api.cancel(job_id)["status"] == "CANCELLED"
    wait_until(marker.exists, timeout=5, what="the handler to notice is_cancelled")
    nxt = api.run({"seconds": 0.05, "marker": str(tmp_path / "unused")})
    s = api.final(nxt)
    assert s["status"] == "COMPLETED" and s["workerId"] == "w1"
    assert api.status(job_id)["status"] == "CANCELLED"
    assert f"job {job_id} stopped after" in worker.log()


def test_cancel_cancels_an_async_handler(fleet: Fleet, api: Api, tmp_path: Path) -> None:
    fleet.start("tests.e2e.handlers.asynchronous:sleeper")
    marker = tmp_path / "cancelled"
    job_id = api.run({"seconds": 30, "marker": str(marker)})
    api.in_progress(job_id)
    api.cancel(job_id)
    wait_until(marker.exists, timeout=5, what="the async handler to be cancelled")
    s = api.final(api.run({"seconds": 0.01, "marker": str(marker)}))
    assert s["status"] == "COMPLETED"
    assert api.status(job_id)["status"] == "CANCELLED"


# --- losing workers, signals, leases ---------------------------------------------------


def test_kill9_mid_job_retries_on_another_worker(fleet: Fleet, api: Api, tmp_path: Path) -> None:
    first = fleet.start("tests.e2e.handlers.basic:sleeper", worker_id="doomed")
    job_id = api.run({"seconds": 1.0, "marker": str(tmp_path / "m")})
    assert api.in_progress(job_id)["workerId"] == "doomed"
    first.proc.kill()
    first.proc.wait(5)
    fleet.start("tests.e2e.handlers.basic:sleeper", worker_id="rescuer")
    s = api.final(job_id, timeout=20)
    assert s["status"] == "COMPLETED"
    assert s["workerId"] == "rescuer"
    assert s["retries"] == 1


def test_sigterm_mid_job_finishes_it_and_exits_0(fleet: Fleet, api: Api, tmp_path: Path) -> None:
    # The handler reports progress, then waits for the `go` file: it is surely running
    # when the signal comes, and ends only after it.
    worker = fleet.start("tests.e2e.handlers.basic:progress")
    go = tmp_path / "go"
    job_id = api.run({"go": str(go)})
    wait_until(lambda: api.status(job_id).get("output"), what="the handler to report progress")
    queued = api.run({"go": str(go)})
    worker.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "taking no more jobs" in worker.log(), timeout=5, what="the SIGTERM")
    go.write_text("go")
    assert worker.exit_code() == 0
    s = api.status(job_id)
    assert s["status"] == "COMPLETED" and s["retries"] == 0
    assert api.status(queued)["status"] == "IN_QUEUE"  # no new job after SIGTERM


def test_second_sigterm_hands_the_job_back(fleet: Fleet, api: Api, tmp_path: Path) -> None:
    worker = fleet.start("tests.e2e.handlers.basic:sleeper", worker_id="quitter")
    started = tmp_path / "started"
    job_id = api.run({"seconds": 30, "marker": str(tmp_path / "m"), "started": str(started)})
    # The handler runs: the worker holds the job (IN_PROGRESS alone is seen by the
    # gateway before the take's answer has reached the worker).
    wait_until(started.exists, timeout=10, what="the handler to start")
    worker.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "taking no more jobs" in worker.log(), timeout=5, what="first SIGTERM")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.exit_code(timeout=5) == 128 + signal.SIGTERM
    assert api.status(job_id)["status"] == "IN_PROGRESS"  # nothing was posted
    fleet.start("tests.e2e.handlers.basic:echo", worker_id="heir")
    s = api.final(job_id, timeout=20)
    assert s["status"] == "COMPLETED" and s["workerId"] == "heir" and s["retries"] == 1


def test_busy_handler_blocking_the_loop_keeps_its_lease(fleet: Fleet, api: Api) -> None:
    # An async handler that never awaits blocks the event loop entirely; only the
    # heartbeat thread can renew the lease (3 s here) during the 9.5 s it runs.
    fleet.start("tests.e2e.handlers.asynchronous:busy")
    job_id = api.run({"seconds": 9.5})
    api.in_progress(job_id)
    s = api.final(job_id, timeout=30)
    assert s["status"] == "COMPLETED", s
    assert s["retries"] == 0
    assert s["output"]["loops"] > 0
    assert s["executionTime"] >= 9000


# --- concurrency and batches -----------------------------------------------------------


def test_concurrency_two_runs_two_jobs_at_once(fleet: Fleet, api: Api, tmp_path: Path) -> None:
    fleet.start("tests.e2e.handlers.basic:sleeper", PODIUM_WORKER_CONCURRENCY="2")
    ids = [api.run({"seconds": 1.0, "marker": str(tmp_path / "m")}) for _ in range(2)]
    outs = [api.final(i)["output"] for i in ids]
    assert max(o["start"] for o in outs) < min(o["end"] for o in outs)  # they overlapped


def test_a_lone_job_starts_without_waiting_for_a_batch(
    fleet: Fleet, api: Api, tmp_path: Path
) -> None:
    # max_wait_s is 60 s, but nothing else is queued: the job runs alone at once (a worker
    # that waited to fill the batch would not start it within the 20 s this test waits).
    fleet.start("tests.e2e.handlers.batch:patient")
    release = tmp_path / "release"
    first = api.run({"n": 0, "wait_for": str(release)})
    wait_until(release.with_suffix(".started").exists, timeout=20, what="the lone job running")
    release.touch()
    assert api.final(first)["output"]["batch"] == 1
    second = api.run({"n": 1})
    assert api.final(second)["output"] == {"batch": 1, "ids": [second], "n": 1}


def test_jobs_queued_behind_a_batch_are_taken_together(
    fleet: Fleet, api: Api, tmp_path: Path
) -> None:
    fleet.start("tests.e2e.handlers.batch:handler")
    release = tmp_path / "release"
    first = api.run({"n": 0, "wait_for": str(release)})
    started = release.with_suffix(".started")
    wait_until(started.exists, timeout=10, what="the first batch running")  # alone
    more = [api.run({"n": 1}), api.run({"n": 2, "fail": True}), api.run({"n": 3})]
    assert all(api.status(j)["status"] == "IN_QUEUE" for j in more)
    release.touch()
    assert api.final(first)["output"]["batch"] == 1
    ok = api.final(more[0])
    assert ok["status"] == "COMPLETED"
    assert ok["output"]["batch"] == 3
    assert sorted(ok["output"]["ids"]) == sorted(more)
    assert api.final(more[2])["output"]["n"] == 3
    failed = api.final(more[1])
    assert failed["status"] == "FAILED" and failed["error"] == "this one fails"
