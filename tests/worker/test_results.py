"""What the worker posts to job-done for each thing a handler can do."""

from __future__ import annotations

import json

import pytest

from podium.worker.results import (
    batch_payloads,
    chunk_error,
    encode,
    encode_chunk,
    exception_payload,
    output_payload,
    stream_payload,
)


@pytest.mark.parametrize(
    ("value", "payload"),
    [
        ("text", {"output": "text"}),
        (None, {"output": None}),
        (False, {"output": False}),
        ([1, 2], {"output": [1, 2]}),
        ({"a": 1}, {"output": {"a": 1}}),
        ({}, {}),
        ({"error": "bad", "partial": 1}, {"error": "bad", "output": {"partial": 1}}),
        ({"error": "bad"}, {"error": "bad"}),
        ({"error": None, "a": 1}, {"output": {"a": 1}}),
        ({"refresh_worker": True, "a": 1}, {"output": {"a": 1}, "stopPod": True}),
        ({"refresh_worker": False}, {}),
    ],
)
def test_output_payload_follows_the_sdk(value: object, payload: dict[str, object]) -> None:
    assert output_payload(value) == payload


def test_output_payload_does_not_mutate_the_handlers_dict() -> None:
    value = {"error": "x", "refresh_worker": True, "a": 1}
    output_payload(value)
    assert value == {"error": "x", "refresh_worker": True, "a": 1}


def test_exception_payload_is_a_json_string_with_the_sdk_fields() -> None:
    try:
        raise KeyError("prompt")
    except KeyError as exc:
        payload = exception_payload(exc, worker_id="w1", hostname="host-a")
    assert set(payload) == {"error"}
    info = json.loads(payload["error"])
    assert info["error_type"] == "<class 'KeyError'>"
    assert info["error_message"] == "'prompt'"
    assert info["error_traceback"].startswith("Traceback")
    assert "KeyError: 'prompt'" in info["error_traceback"]
    assert (info["worker_id"], info["hostname"]) == ("w1", "host-a")
    assert info["runpod_version"] == "1.12.0"


def test_chunk_errors_and_stream_payloads() -> None:
    assert chunk_error({"error": "oops"}) == "oops"
    assert chunk_error({"error": ""}) is None
    assert chunk_error("error") is None
    assert stream_payload([1, 2], aggregate=True) == {"output": [1, 2]}
    assert stream_payload([1, 2], aggregate=False) == {"output": []}
    assert json.loads(encode_chunk({"t": "é"})) == {"output": {"t": "é"}}
    with pytest.raises(TypeError):
        encode_chunk(object())


def test_batch_payloads_one_per_job_or_an_error_for_all() -> None:
    assert batch_payloads([1, {"error": "no"}], 2) == [{"output": 1}, {"error": "no"}]
    short = batch_payloads([1], 2)
    assert all("returned 1 results for 2 jobs" in p["error"] for p in short)
    assert "must return a list" in batch_payloads("x", 1)[0]["error"]


def test_encode_reports_failure_and_replaces_unencodable_output() -> None:
    assert encode({"output": "ü"}) == ('{"output": "ü"}'.encode(), False)
    assert encode({"error": "x"})[1] is True
    body, failed = encode({"output": {1, 2}, "stopPod": True})
    assert failed
    decoded = json.loads(body)
    assert "not JSON-serializable" in decoded["error"] and decoded["stopPod"] is True
