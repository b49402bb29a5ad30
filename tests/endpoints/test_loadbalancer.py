"""The load-balancing contract's pure parts (endpoints/loadbalancer.py) and the endpoint
settings that make an endpoint one (endpoints/spec.py)."""

from __future__ import annotations

import pytest

from podium.endpoints import EndpointSpec
from podium.endpoints.loadbalancer import (
    Affinity,
    Choice,
    Health,
    LbWorker,
    answer_headers,
    choose,
    endpoint_of_host,
    env_errors,
    forwarded_headers,
    health_of,
    health_path,
    lb_env,
    lb_url,
    parse_affinity,
    wants_health_port,
)
from podium.errors import BadRequest


@pytest.mark.parametrize(
    ("status", "health"),
    [
        (200, Health.READY),
        (204, Health.INITIALIZING),
        (201, Health.UNHEALTHY),
        (500, Health.UNHEALTHY),
        (None, Health.UNHEALTHY),
    ],
)
def test_health_is_runpods_contract(status, health):
    assert health_of(status) is health


@pytest.mark.parametrize(
    ("host", "endpoint"),
    [
        ("abc123.localhost:8000", "abc123"),
        ("ABC123.gpu.example.com", "abc123"),
        ("abc123.localhost", "abc123"),
        ("localhost:8000", None),
        ("127.0.0.1:8000", None),  # an IP names no endpoint
        ("[::1]:8000", None),
        ("abc123.", None),
        ("", None),
        (None, None),
        ("a_b.localhost", None),
        ("x" * 65 + ".localhost", None),
    ],
)
def test_the_endpoint_a_host_names(host, endpoint):
    assert endpoint_of_host(host) == endpoint


def test_worker_env_ports_and_health_path():
    assert lb_env({}, 4100, None) == {
        "PORT": "4100",
        "PORT_HEALTH": "4100",
        "HEALTH_CHECK_PATH": "/ping",
    }
    env = {"PORT": "8000", "PORT_HEALTH": "8001", "HEALTH_CHECK_PATH": "/healthz"}
    assert wants_health_port(env) and not wants_health_port({"PORT_HEALTH": "80"})
    assert lb_env(env, 4100, 4101)["PORT_HEALTH"] == "4101"
    assert health_path({"HEALTH_CHECK_PATH": "no-slash"}) == "/ping"
    assert env_errors(env) == []
    problems = env_errors({"PORT": "0", "PORT_HEALTH": "http", "HEALTH_CHECK_PATH": "x y"})
    assert len(problems) == 3 and "PORT" in problems[0]


def test_affinity_header():
    assert parse_affinity("w1") == Affinity("w1", strict=False)
    assert parse_affinity("strict w1") == Affinity("w1", strict=True)
    assert parse_affinity("STRICT  w1") == Affinity("w1", strict=True)
    assert parse_affinity("") is None and parse_affinity(None) is None
    assert parse_affinity("a b c") is None


def test_least_requests_in_flight_and_affinity():
    a, b, c = LbWorker("a", "http://a", 3), LbWorker("b", "http://b", 1), LbWorker("c", "", 1)
    assert choose([a, b, c]) == b  # the least busy, ties: the first listed
    assert choose([]) is Choice.WAIT
    assert choose([a, b], Affinity("a", strict=False)) == a  # soft: that one, though busy
    assert choose([a, b], Affinity("z", strict=False)) == b  # soft, gone: any other
    assert choose([a, b], Affinity("a", strict=True)) == a
    assert choose([a, b], Affinity("z", strict=True), known={"z"}) is Choice.WAIT
    assert choose([a, b], Affinity("z", strict=True)) is Choice.GONE
    assert choose([a], Affinity("a", strict=True), max_in_flight=3) is Choice.WAIT


def test_forwarded_headers_leave_the_key_and_hop_by_hop_ones_here():
    given = [
        (b"host", b"ep.localhost:8000"),
        (b"authorization", b"Bearer secret"),
        (b"connection", b"keep-alive, X-Private"),
        (b"x-private", b"1"),
        (b"transfer-encoding", b"chunked"),
        (b"x-forwarded-for", b"10.0.0.9"),
        (b"content-type", b"application/json"),
        (b"x-custom", b"v"),
    ]
    out = dict(forwarded_headers(given, "127.0.0.1", "ep.localhost:8000", "http"))
    assert b"authorization" not in out and b"x-private" not in out and b"host" not in out
    assert b"transfer-encoding" not in out and b"connection" not in out
    assert out[b"x-forwarded-for"] == b"10.0.0.9, 127.0.0.1"
    assert out[b"x-forwarded-host"] == b"ep.localhost:8000"
    assert out[b"content-type"] == b"application/json" and out[b"x-custom"] == b"v"
    back = answer_headers(
        [(b"content-type", b"text/event-stream"), (b"connection", b"close"), (b"set-cookie", b"a")]
    )
    assert back == [(b"content-type", b"text/event-stream"), (b"set-cookie", b"a")]


def test_the_url_to_call():
    assert lb_url("http://127.0.0.1:8000", "abc") == "http://abc.localhost:8000"
    assert lb_url("https://gpu.example.com", "abc") == "https://abc.gpu.example.com"
    assert lb_url("http://10.0.0.5:8000", "abc") == "http://10.0.0.5:8000/lb/abc"


def _spec(**kw) -> EndpointSpec:
    return EndpointSpec(name="lb").updated(kw)


def test_a_load_balancer_scales_by_request_count_and_runs_a_server():
    spec = _spec(type="LOAD_BALANCER", template_id="custom", command="python app.py")
    assert spec.load_balancer and spec.scaler_type == "REQUEST_COUNT"
    spec.validate()
    for bad, words in [
        ({"type": "BOTH"}, "`type` must be QUEUE or LOAD_BALANCER"),
        ({"type": "LOAD_BALANCER"}, "needs workers Podium runs"),
        ({"type": "LOAD_BALANCER", "template_id": "sd15"}, "not the sd15 queue worker"),
        (
            {"type": "LOAD_BALANCER", "scaler_type": "QUEUE_DELAY", "image_name": "img:1"},
            "scales by REQUEST_COUNT",
        ),
        (
            {"type": "LOAD_BALANCER", "image_name": "img:1", "env": {"PORT": "99999"}},
            "`env.PORT` must be a port number",
        ),
    ]:
        with pytest.raises(BadRequest, match=words):
            _spec(**bad).validate()
