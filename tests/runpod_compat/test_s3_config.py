"""s3Config reaches an unmodified runpod SDK worker exactly as RunPod hands it over
(`job["s3Config"]`), is never shown to clients, and is deleted with the job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Gateway
from tests.runpod_compat.harness import RUNPOD_MARKS, RunpodWorker, submit, wait_final

pytestmark = RUNPOD_MARKS

S3 = {
    "accessId": "AKIA-TEST",
    "accessSecret": "s3-secret-value",
    "bucketName": "podium-bucket",
    "endpointUrl": "https://s3.example.invalid",
}


@pytest.fixture(scope="module")
def s3_worker(gw: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunpodWorker]:
    worker = RunpodWorker(gw, "s3_handler.py", tmp_path_factory.mktemp("rp-s3")).start()
    try:
        yield worker.wait_ready()
    finally:
        worker.stop()


def test_the_worker_receives_s3config_as_sent(gw: Gateway, s3_worker: RunpodWorker) -> None:
    job_id = submit(gw, s3_worker.endpoint_id, {"x": 1}, s3Config=S3)
    st = wait_final(gw, s3_worker.endpoint_id, job_id, worker=s3_worker)
    assert st["status"] == "COMPLETED", s3_worker.log_tail()
    assert st["output"]["s3Config"] == S3
    assert st["output"]["input"] == {"x": 1}
    assert {"id", "input", "s3Config"} <= set(st["output"]["keys"])


def test_a_job_without_s3config_reaches_the_handler_without_it(
    gw: Gateway, s3_worker: RunpodWorker
) -> None:
    job_id = submit(gw, s3_worker.endpoint_id, {"x": 2})
    st = wait_final(gw, s3_worker.endpoint_id, job_id, worker=s3_worker)
    assert st["status"] == "FAILED" and "s3Config" in st["error"]  # KeyError, as on RunPod


def test_s3config_is_never_shown_to_clients(gw: Gateway, s3_worker: RunpodWorker) -> None:
    job_id = submit(gw, s3_worker.endpoint_id, {"x": 3}, s3Config=S3)
    wait_final(gw, s3_worker.endpoint_id, job_id, worker=s3_worker)
    with gw.client() as c:
        listed = c.get(f"/v2/{s3_worker.endpoint_id}/requests").text
        health = c.get(f"/v2/{s3_worker.endpoint_id}/health").text
    assert "s3-secret-value" not in listed + health
    log = Path(gw.log_path).read_text(errors="replace") if gw.log_path else ""
    assert "s3-secret-value" not in log
