"""Endpoint records and settings (endpoints/spec.py): stored docs, validation."""

from __future__ import annotations

import pytest

from podium.endpoints import Endpoint, EndpointSpec
from podium.endpoints.spec import MAX_WORKERS
from podium.errors import BadRequest


def test_old_endpoint_docs_still_load():
    old = {
        "id": "abc",
        "spec": {
            "name": "x",
            "execution_timeout_ms": 600000,
            "retry_limit": 2,
            "retention_run_ms": None,
            "retention_sync_ms": None,
            "input_schema": None,
        },
        "worker_token_hash": "h",
        "webhook_secret": "s",
        "created_at": 1.0,
        "extra": {},
    }
    ep = Endpoint.from_doc(old)
    assert ep.spec.template_id is None and ep.spec.workers_max == 3 and not ep.spec.managed
    newer = {**old, "spec": {**old["spec"], "some_future_field": 1}}
    assert Endpoint.from_doc(newer).spec.name == "x"
    assert Endpoint.from_doc(ep.to_doc()) == ep


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"workers_max": MAX_WORKERS + 1}, f"`workersMax` must be at most {MAX_WORKERS}"),
        ({"workers_min": -1}, "`workersMin` must be 0 or more"),
        ({"idle_timeout": float("nan")}, "`idleTimeout` must be 0 or more"),
        ({"idle_timeout": 3601.0}, "`idleTimeout` must be at most 3600"),
        ({"scaler_type": "REQUEST_COUNT", "scaler_value": 0.5}, "must be at least 1"),
        ({"scaler_type": "QUEUE_DELAY", "scaler_value": 1e300}, "`scalerValue` must be at most"),
        ({"template_id": "sd15", "model": "auto\x00"}, "`model` may not contain a NUL"),
        ({"template_id": "custom", "command": "a\x00b"}, "`command` may not contain a NUL"),
        ({"env": {"A": "\x00"}}, "`env.A` may not contain a NUL"),
        ({"env": {"A\n": "1"}}, "invalid variable names"),
    ],
)
def test_validation_names_the_problem(changes, problem):
    spec = EndpointSpec(name="x").updated(changes)
    with pytest.raises(BadRequest, match="Invalid endpoint: .*" + problem.replace(".", "\\.")):
        spec.validate()


def test_the_bounds_themselves_are_valid():
    EndpointSpec(
        name="x", workers_min=MAX_WORKERS, workers_max=MAX_WORKERS, idle_timeout=3600
    ).validate()
