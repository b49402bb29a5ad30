"""Issue 17's attacks by key holders (hardening, round 3), each answered with a 4xx JSON
error at the door, nothing stored that a later read could not show, no other endpoint
touched; on every store backend. The fleet's side (starts per pass, CPU workers, one
failing endpoint) is in tests/fleet/test_supervisor.py; the stores' budgets in
tests/store/."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from podium.endpoints.spec import MAX_WORKERS
from podium.endpoints.worker_env import PING_INTERVAL_HEADER
from podium.jobs import WORKER_ID_MAX_CHARS
from podium.logs.lines import LogLine


def _error(r, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()["error"]


async def _key(api, scopes, endpoints=None) -> str:
    body = {"name": "k", "scopes": scopes, "endpoints": endpoints or []}
    r = await api.http.post("/v1/keys", json=body, headers=api.auth())
    assert r.status_code == 200, r.text
    return r.json()["key"]


async def _endpoint(api, **spec) -> dict:
    r = await api.http.post("/v1/endpoints", json={"name": "e", **spec}, headers=api.auth())
    assert r.status_code == 200, r.text
    return r.json()


# --- 1. worker counts are bounded -------------------------------------------------------


@pytest.mark.parametrize("value", [MAX_WORKERS + 1, 12_000, 2**63 - 1])
async def test_worker_counts_past_the_bound_are_refused(api, value):
    limited = await _key(api, ["admin"], [api.ep])
    for field in ("workersMin", "workersMax"):
        body = {"workersMax": value} if field == "workersMax" else {field: value}
        r = await api.http.patch(f"/v1/endpoints/{api.ep}", json=body, headers=api.auth(limited))
        assert f"`{field}` must be at most {MAX_WORKERS}" in _error(r, 400)
    r = await api.http.post(
        "/v1/endpoints", json={"name": "big", "workersMax": value}, headers=api.auth()
    )
    assert f"`workersMax` must be at most {MAX_WORKERS}" in _error(r, 400)
    shown = (await api.http.get(f"/v1/endpoints/{api.ep}", headers=api.auth())).json()
    assert shown["workersMax"] <= MAX_WORKERS  # nothing was stored


async def test_graphql_lists_endpoints_after_a_huge_workers_max_was_refused(api):
    r = await api.http.patch(
        f"/v1/endpoints/{api.ep}", json={"workersMax": 2**63 - 1}, headers=api.auth()
    )
    assert r.status_code == 400
    r = await api.http.post(
        "/graphql",
        json={"query": "query { myself { endpoints { id workersMax workersMin gpuCount } } }"},
        headers=api.auth(),
    )
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    assert [e["id"] for e in r.json()["data"]["myself"]["endpoints"]] == [api.ep]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"idleTimeout": 1e9}, "`idleTimeout` must be at most 3600"),
        ({"scalerType": "QUEUE_DELAY", "scalerValue": 1e300}, "`scalerValue` must be at most"),
        ({"scalerType": "REQUEST_COUNT", "scalerValue": 1e12}, "`scalerValue` must be at most"),
    ],
)
async def test_scaling_numbers_are_bounded(api, body, message):
    r = await api.http.patch(f"/v1/endpoints/{api.ep}", json=body, headers=api.auth())
    assert message in _error(r, 400)


# --- 2 and 3. inputSchema: no retrieval, no catastrophic regexes --------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Recorder.hits.append(self.path)
        body = b'{"enum": ["SECRET-INTERNAL-VALUE"]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def internal_url() -> Iterator[str]:
    """An 'internal' service on loopback that records every fetch."""
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/internal"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("scheme", ["http", "file"])
async def test_a_schema_ref_is_never_fetched(api, internal_url, scheme):
    ref = internal_url if scheme == "http" else "file:///etc/passwd"
    schema = {"type": "object", "properties": {"x": {"$ref": ref}}}
    r = await api.http.patch(
        f"/v1/endpoints/{api.ep}", json={"inputSchema": schema}, headers=api.auth()
    )
    message = _error(r, 400)
    assert "fetches nothing" in message and "SECRET" not in message
    r = await api.http.post("/v1/endpoints", json={"name": "s", "inputSchema": schema},
                            headers=api.auth())  # fmt: skip
    assert _error(r, 400)
    assert _Recorder.hits == []


async def test_a_stored_schema_with_a_remote_ref_is_a_400_at_run_and_fetches_nothing(
    api, internal_url
):
    """A schema stored before the check existed: /run says why, never fetches or 500s."""
    endpoint = await api.state.store.get_endpoint(api.ep)
    assert endpoint is not None
    endpoint.spec.input_schema = {"properties": {"x": {"$ref": internal_url}}}
    await api.state.store.put_endpoint(endpoint)
    api.state.lookups.forget_endpoint(api.ep)
    r = await api.run({"input": {"x": "hello"}})
    assert "inputSchema" in _error(r, 400)
    assert _Recorder.hits == []


async def test_local_refs_still_work(api):
    schema = {
        "$defs": {"size": {"type": "integer", "maximum": 8}},
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/size"}},
    }
    await api.http.patch(
        f"/v1/endpoints/{api.ep}", json={"inputSchema": schema}, headers=api.auth()
    )
    assert (await api.run({"input": {"n": 3}})).status_code == 200
    assert "n:" in _error(await api.run({"input": {"n": 9}}), 400)
    r = await api.http.patch(
        f"/v1/endpoints/{api.ep}",
        json={"inputSchema": {"$ref": "#/$defs/missing"}},
        headers=api.auth(),
    )
    assert "must point inside the schema" in _error(r, 400)


async def test_a_catastrophic_pattern_runs_in_linear_time(api):
    """`^(a+)+$` on Python's backtracking engine: 2^n steps (40 characters: hours); on
    the linear-time engine the answer comes at once (the pytest timeout guards it)."""
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}},
        "patternProperties": {"^(b+)+$": {"type": "integer"}},
        "additionalProperties": False,  # each property name is matched against ^(b+)+$
    }
    r = await api.http.patch(
        f"/v1/endpoints/{api.ep}", json={"inputSchema": schema}, headers=api.auth()
    )
    assert r.status_code == 200, r.text
    assert "does not match" in _error(await api.run({"input": {"s": "a" * 40 + "!"}}), 400)
    assert "b!" in _error(await api.run({"input": {"b" * 40 + "!": "x", "s": "aa"}}), 400)
    assert (await api.run({"input": {"s": "aaaa", "bbb": 1}})).status_code == 200


async def test_patterns_the_linear_engine_lacks_are_refused_when_set(api):
    for pattern in ("(?=a)b", r"(a)\1"):
        schema = {"properties": {"s": {"pattern": pattern}}}
        r = await api.http.patch(
            f"/v1/endpoints/{api.ep}", json={"inputSchema": schema}, headers=api.auth()
        )
        assert "linear-time regex engine" in _error(r, 400)


async def test_an_answer_names_a_bounded_number_of_problems(api):
    schema = {"type": "array", "items": {"type": "integer"}}
    await api.http.patch(
        f"/v1/endpoints/{api.ep}", json={"inputSchema": schema}, headers=api.auth()
    )
    message = _error(await api.run({"input": ["x" * 10_000] * 500}), 400)
    assert len(message) < 10_000 and "and more (20 shown)" in message


# --- 4. NUL never reaches an argv or an environment ----------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"templateId": "sd15", "model": "auto\u0000"},
        {"templateId": "custom", "command": "python\u0000 worker.py"},
        {"templateId": "custom", "command": "python w.py", "env": {"A": "x\u0000y"}},
    ],
)
async def test_nul_is_refused_wherever_a_value_reaches_a_worker(api, body):
    r = await api.http.post("/v1/endpoints", json={"name": "n", **body}, headers=api.auth())
    assert "NUL" in _error(r, 400)
    r = await api.http.patch(f"/v1/endpoints/{api.ep}", json=body, headers=api.auth())
    assert "NUL" in _error(r, 400)


async def test_nul_is_refused_in_templates_and_graphql(api):
    r = await api.http.post(
        "/v1/templates", json={"name": "t", "command": "python\u0000x"}, headers=api.auth()
    )
    assert "NUL" in _error(r, 400)
    r = await api.http.post(
        "/v1/templates",
        json={"name": "t", "command": "python x", "env": {"A": "\u0000"}},
        headers=api.auth(),
    )
    assert "NUL" in _error(r, 400)
    query = (
        'mutation { saveTemplate(input: {name: "g", imageName: "img", '
        'dockerArgs: "python\\u0000 x.py"}) { id } }'
    )
    r = await api.http.post("/graphql", json={"query": query}, headers=api.auth())
    errors = r.json().get("errors")
    assert errors and "NUL" in errors[0]["message"]
    templates = (await api.http.get("/v1/templates", headers=api.auth())).json()
    assert all("\u0000" not in (t["command"] or "") for t in templates)


# --- 5. a worker token cannot spend the store ---------------------------------------------


async def test_a_worker_id_is_bounded(api):
    long_id = "w" * (WORKER_ID_MAX_CHARS + 1)
    for path in (f"ping/{long_id}", f"job-take/{long_id}"):
        r = await api.http.get(f"/v2/{api.ep}/{path}?gpu=cpu&hold=0", headers=api.worker())
        assert f"1 to {WORKER_ID_MAX_CHARS} characters" in _error(r, 400)
    r = await api.http.post(
        f"/v2/{api.ep}/worker-logs/{long_id}", json={"lines": []}, headers=api.worker()
    )
    assert _error(r, 400)


async def test_invented_worker_ids_stay_within_the_endpoint_log_budget(api):
    """One endpoint's token writes as 12 workers; the budget (3 workers) holds, and
    another endpoint's log is untouched."""
    api.state.settings.log_workers_per_endpoint = 3
    other = await _endpoint(api)
    r = await api.http.post(
        f"/v2/{other['id']}/worker-logs/theirs",
        json={"lines": [{"text": "keep me"}]},
        headers={"Authorization": other["workerToken"]},
    )
    assert r.status_code == 200, r.text
    for i in range(12):
        r = await api.http.post(
            f"/v2/{api.ep}/worker-logs/fake-{i}",
            json={"lines": [{"text": f"junk {i}"}] * 5},
            headers=api.worker(),
        )
        assert r.status_code == 200, r.text
    mine = await api.http.get(f"/v1/endpoints/{api.ep}/logs?tail=1000", headers=api.auth())
    workers = {line["workerId"] for line in mine.json()["lines"]}
    assert workers == {"fake-9", "fake-10", "fake-11"}
    theirs = await api.http.get(f"/v1/endpoints/{other['id']}/logs", headers=api.auth())
    assert [line["text"] for line in theirs.json()["lines"]] == ["keep me"]


# --- 6. every stored time can be read back --------------------------------------------


@pytest.mark.parametrize("at", [1e15, 253_402_300_800, -1, 0])
async def test_a_log_time_far_from_the_gateway_clock_is_refused(api, at):
    r = await api.http.post(
        f"/v2/{api.ep}/worker-logs/w1",
        json={"lines": [{"time": at, "text": "when?"}]},
        headers=api.worker(),
    )
    assert "`lines[0].time` must be a time between" in _error(r, 400)
    r = await api.http.get(f"/v1/endpoints/{api.ep}/logs", headers=api.auth())
    assert r.status_code == 200 and r.json()["lines"] == []


async def test_a_line_stored_with_an_impossible_time_still_reads(api):
    """Written straight into the store (as before the check): the read renders it."""
    await api.state.store.logs.append(
        api.ep, "w1", [LogLine(1e15, "from the far future")], api.state.settings.log_budget
    )
    r = await api.http.get(f"/v1/endpoints/{api.ep}/logs", headers=api.auth())
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["time"].startswith("9999-12-31T")


async def test_a_ping_time_past_the_year_9999_is_refused_and_reads_survive(api):
    r = await api.http.get(
        f"/v2/{api.ep}/ping/w1?gpu=cpu&load_ms=253402300800000", headers=api.worker()
    )
    assert "`load_ms` must be a time between" in _error(r, 400)
    # a record stored before the check: the lists still answer
    await api.state.store.heartbeat(
        api.ep, "w2", [], api.state.settings.lease_s, None, {"loadedAt": 253402300800.0}
    )
    for path in (
        f"/v1/endpoints/{api.ep}/workers",
        f"/v1/endpoints/{api.ep}",
        "/v1/endpoints?includeWorkers=true",
    ):
        r = await api.http.get(path, headers=api.auth())
        assert r.status_code == 200, (path, r.text)


# --- 8. digits are ASCII digits -------------------------------------------------------------


async def test_non_ascii_digits_are_a_400(api):
    job = (await api.run()).json()["id"]
    for path in (
        f"/v2/{api.ep}/status/{job}?ttl=²",
        f"/v2/{api.ep}/requests?limit=²",
        f"/v2/{api.ep}/requests?since=²",
        f"/v2/{api.ep}/requests?until=١٢",
        f"/v1/endpoints/{api.ep}/logs?tail=²",
        f"/v1/endpoints/{api.ep}/logs?since=١",
    ):
        r = await api.http.get(path, headers=api.auth())
        assert _error(r, 400), path
    r = await api.http.get(f"/v2/{api.ep}/ping/w1?gpu=cpu&exec_ms=²", headers=api.worker())
    assert "`exec_ms`" in _error(r, 400)


# --- 9. a duplicate job-done takes no new job ------------------------------------------------


async def test_a_duplicate_job_done_hands_out_no_next_job(api):
    first = (await api.run()).json()["id"]
    waiting = (await api.run()).json()["id"]
    assert (await api.take()).json()["id"] == first
    url = f"/v2/{api.ep}/job-done/w1/{first}?gpu=cpu&isStream=false&podium_next=1"
    headers = {**api.worker(), "Content-Type": "application/x-www-form-urlencoded"}
    done = await api.http.post(url, content=b'{"output": 1}', headers=headers)
    assert done.json()["applied"] is True and [j["id"] for j in done.json()["next"]] == [waiting]
    third = (await api.run()).json()["id"]
    again = await api.http.post(url, content=b'{"output": 1}', headers=headers)
    assert again.status_code == 200 and again.json()["applied"] is False
    assert again.json()["next"] == []
    assert (await api.status(third)).json()["status"] == "IN_QUEUE"


# --- 10. an admin key limited to some endpoints ------------------------------------------


async def test_a_limited_admin_key_sees_its_scopes_and_cannot_clear_what_workers_run(api):
    limited = await _key(api, ["admin"], [api.ep])
    me = (await api.http.get("/v1/me", headers=api.auth(limited))).json()
    assert me["scopes"] == ["read", "run", "admin"]  # on its endpoints
    assert me["gatewayScopes"] == ["read", "run"]  # no gateway-wide administration
    await api.http.patch(
        f"/v1/endpoints/{api.ep}",
        json={"templateId": "custom", "command": "python w.py", "workersMax": 0},
        headers=api.auth(),
    )
    for body in ({"templateId": None}, {"command": None}, {"model": "tiny"}, {"env": None}):
        r = await api.http.patch(f"/v1/endpoints/{api.ep}", json=body, headers=api.auth(limited))
        assert "needs an admin key for every endpoint" in _error(r, 403), body
    shown = (await api.http.get(f"/v1/endpoints/{api.ep}", headers=api.auth())).json()
    assert shown["templateId"] == "custom" and shown["command"] == "python w.py"
    r = await api.http.patch(
        f"/v1/endpoints/{api.ep}", json={"workersMax": 2}, headers=api.auth(limited)
    )
    assert r.status_code == 200, r.text


# --- 11. the gateway tells workers how often to ping --------------------------------------


async def test_a_ping_answer_carries_the_gateway_interval(api):
    r = await api.http.get(f"/v2/{api.ep}/ping/w1?gpu=cpu", headers=api.worker())
    assert r.status_code == 200
    assert r.headers[PING_INTERVAL_HEADER] == str(api.state.settings.ping_interval_ms)
