"""Schemathesis against the gateway's own OpenAPI, on a real `podium serve`: client, worker
and admin routes, called with valid keys and tokens (and the real endpoint and job ids most
of the time, so the fuzzer gets past the lookups). No answer may be a 5xx; every error is a
JSON body with an `error` string (OpenAI's error object on /openai/ routes, GraphQL's
`errors` on /graphql).

Bounded for CI: PODIUM_FUZZ_EXAMPLES examples per operation (default 20, about a minute).

Deterministic in `make test`: the same cases every run (hypothesis `derandomize`), so CI's
verdict never depends on luck. `make fuzz` explores at random with many examples and
prints its seed; a failure replays with that seed:

    PODIUM_FUZZ_EXAMPLES=1000 PODIUM_FUZZ_SEED=random make fuzz
    PODIUM_FUZZ_SEED=<the printed seed> make fuzz   # the same cases again

Every failure the fuzz has found is an explicit test beside the code it broke (e.g. the
logs read after a stored far-future time: tests/gateway/test_hardening_round3.py).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from podium.gateway.rest_v2 import REST_V2_PREFIXES
from tests.e2e.conftest import Gateway, free_port

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("PODIUM_FUZZ_EXAMPLES", "20"))
# None: derandomized (fixed cases, CI); "random": a fresh seed, printed; a number: that seed
_SEED = os.environ.get("PODIUM_FUZZ_SEED")
SEED = random.SystemRandom().randrange(2**32) if _SEED == "random" else _SEED
WAIT_CAP_MS = 1000  # long-polls are fuzzed for their parsing, not left to hold for minutes
# No worker serves the fuzzed endpoint: an OpenAI request that passes its checks waits this
# long for an answer, then answers its documented 504 (the job is cancelled).
OPENAI_WAIT_MS = 1000


class Target:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        with gw.client() as c:
            ep = c.post("/v1/endpoints", json={"name": "fuzz"}).json()
            self.endpoint, self.token = ep["id"], ep["workerToken"]
            self.jobs = [
                c.post(f"/v2/{self.endpoint}/run", json={"input": {"n": i}}).json()["id"]
                for i in range(5)
            ]
        self.rng = random.Random(7)

    def prepare(self, case: Any) -> dict[str, str]:
        """Real ids most of the time, bounded waits, and the credential the route needs."""
        params = case.path_parameters or {}
        if "endpoint_id" in params and self.rng.random() < 0.8:
            params["endpoint_id"] = self.endpoint
        if "job_id" in params and self.rng.random() < 0.6:
            params["job_id"] = self.rng.choice(self.jobs)
        if case.query is None:
            case.query = {}
        wait = case.query.get("wait")
        if isinstance(wait, str | int | float) and _over(wait, WAIT_CAP_MS):
            case.query["wait"] = str(WAIT_CAP_MS)
        if wait in (None, "") and case.path.endswith(("/runsync", "/status-sync/{job_id}")):
            case.query["wait"] = str(WAIT_CAP_MS)  # their defaults hold 90 s
        if case.path.endswith("/logs"):
            case.query["follow"] = "false"  # a follow never ends: its reading is fuzzed
        worker_route = any(part in case.path for part in ("/job-", "/ping/", "/worker-logs/"))
        key = self.token if worker_route else self.gw.admin_key
        return {"Authorization": key}


def _over(value: str | int | float, cap: float) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number) and number > cap


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data: Path = tmp_path_factory.mktemp("fuzz-gw")
    # long-polls end fast (the last --take-hold-s given wins over the fixture's)
    args = ["--no-rate-limits", "--no-supervisor", "--take-hold-s", "0.1"]
    gw = Gateway(data_dir=data, port=free_port(), extra_args=args)
    with pytest.MonkeyPatch.context() as env:  # read by the gateway process at start
        env.setenv("PODIUM_OPENAI_WAIT_MS", str(OPENAI_WAIT_MS))
        gw.start()
    try:
        yield Target(gw)
    finally:
        gw.stop()


@pytest.mark.timeout(max(900, EXAMPLES * 20))
def test_no_5xx_and_every_error_is_json(target: Target) -> None:
    """Every operation of /openapi.json, EXAMPLES generated cases each. (Schemathesis's
    pytest plugin does not run under pytest 9 yet: its strategies are driven here.)"""
    schema = schemathesis.openapi.from_url(target.gw.url + "/openapi.json")
    if SEED is not None:
        print(f"fuzz seed: PODIUM_FUZZ_SEED={SEED}")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20  # client, worker, admin and ops routes
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=SEED is None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],  # no shrinking: the case is printed
        )
        def fuzz(case: Any) -> None:
            check(target, case)

        if SEED is not None:
            fuzz = hypothesis_seed(int(SEED))(fuzz)

        try:
            fuzz()
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)


def _message(path: str, body: Any) -> Any:
    """The error's message in the route's documented shape: OpenAI's on /openai/ routes,
    GraphQL's on /graphql, RunPod's v2 ErrorResponse (`detail`) on the REST v2 routes,
    `{"error": "..."}` everywhere else (docs/api.md)."""
    if not isinstance(body, dict):
        return None
    if "/openai/" in path:
        error = body.get("error")
        return error.get("message") if isinstance(error, dict) else None
    if path == "/graphql":
        errors = body.get("errors")
        return errors[0].get("message") if isinstance(errors, list) and errors else None
    if any(path == p or path.startswith(p + "/") for p in REST_V2_PREFIXES):
        return body.get("detail")  # RunPod's v2 ErrorResponse
    return body.get("error")


def check(target: Target, case: Any) -> None:
    headers = target.prepare(case)
    response = case.call(base_url=target.gw.url, headers=headers, timeout=30)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    timeout = (  # an OpenAI job nobody ran: its documented answer (see OPENAI_WAIT_MS)
        "/openai/" in case.path
        and response.status_code == 504
        and response.json()["error"]["type"] == "timeout"
    )
    assert response.status_code < 500 or timeout, where
    if response.status_code >= 400:
        ctype = response.headers.get("content-type") or [""]
        assert (ctype[0] if isinstance(ctype, list) else ctype).startswith("application/json"), (
            where
        )
        message = _message(case.path, response.json())
        assert isinstance(message, str) and message, where


def test_the_gateway_survived(target: Target) -> None:
    """After the fuzzing, the gateway still serves its endpoint's jobs."""
    with httpx.Client(
        base_url=target.gw.url, headers={"Authorization": target.gw.admin_key}, timeout=10
    ) as c:
        assert c.get("/healthz").status_code == 200
        r = c.post(f"/v2/{target.endpoint}/run", json={"input": {"still": "alive"}})
        assert r.status_code in (200, 404)  # 404: the fuzzer deleted the endpoint
