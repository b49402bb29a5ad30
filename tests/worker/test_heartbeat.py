"""Heartbeat: what a ping says, and that it keeps going while a thread holds the GIL."""

from __future__ import annotations

import threading
import time

import httpx

from podium.worker.config import WorkerConfig
from podium.worker.heartbeat import Heartbeat
from podium.worker.startup import Startup, process_exec_time


def config(interval_ms: int = 1000) -> WorkerConfig:
    return WorkerConfig.from_env(
        env={"RUNPOD_PING_INTERVAL": str(interval_ms)},
        gateway="http://gw",
        endpoint_id="ep",
        worker_id="w1",
        token="tok",
    )


def recording() -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def test_a_ping_names_the_held_jobs_and_the_versions() -> None:
    client, seen = recording()
    hb = Heartbeat(config(), client)
    assert hb.beat()
    hb.add("b")
    hb.add("a")
    assert hb.beat()
    hb.remove("a")
    hb.remove("b")
    hb.beat()
    idle, busy, idle_again = (r.url.params for r in seen)
    assert "job_id" not in idle and idle["state"] == "idle"
    assert busy["job_id"] == "a,b" and busy["state"] == "running"
    assert busy["runpod_version"] == "1.12.0" and busy["gpu"] == "unknown"
    assert "job_id" not in idle_again
    assert seen[0].url.path == "/v2/ep/ping/w1"


def test_pings_say_when_the_process_came_up() -> None:
    client, seen = recording()
    hb = Heartbeat(config(), client)
    hb.startup = Startup(exec_at=100.0, booted_at=101.25, loaded_at=104.5)
    hb.beat()
    hb.beat()
    for request in seen:  # every ping: a gateway that lost the record learns it again
        params = request.url.params
        assert (params["exec_ms"], params["boot_ms"], params["load_ms"]) == (
            "100000",
            "101250",
            "104500",
        )
    hb.startup = Startup(exec_at=None, booted_at=1.0, loaded_at=2.0)
    hb.beat()
    assert "exec_ms" not in seen[-1].url.params  # no /proc: not sent


def test_the_process_exec_time_comes_before_now() -> None:
    began = process_exec_time()
    assert began is not None  # Linux: /proc
    assert began <= time.time()
    startup = Startup.now(booted_at=time.time())
    assert startup.exec_at is not None and abs(startup.exec_at - began) < 0.05  # the same start
    assert startup.exec_at <= startup.booted_at <= startup.loaded_at


def test_a_failed_ping_is_reported_not_raised() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down")

    hb = Heartbeat(config(), httpx.Client(transport=httpx.MockTransport(down)))
    assert hb.beat() is False


def test_pings_go_on_while_another_thread_spins() -> None:
    client, seen = recording()
    hb = Heartbeat(config(interval_ms=50), client)
    stop = threading.Event()

    def spin() -> None:  # pure Python: holds the GIL except at switch intervals
        n = 0
        while not stop.is_set():
            n += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    hb.start()
    try:  # the heartbeat thread is not starved: its pings keep coming (bounded wait)
        deadline = time.monotonic() + 30
        while len(seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        spinning = spinner.is_alive()
    finally:
        stop.set()
        spinner.join()
        hb.stop()
    assert spinning and len(seen) >= 5


def test_the_heartbeat_follows_a_gateway_that_expects_pings_more_often() -> None:
    """A worker started by hand (no RUNPOD_PING_INTERVAL: 10 s) against a gateway whose
    interval is 2 s would lose its jobs' leases between pings: it pings every 2 s."""
    answers = iter(["2000", "60000", "soon", "2000"])

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={}, headers={"X-Podium-Ping-Interval-Ms": next(answers)})

    hb = Heartbeat(config(10_000), httpx.Client(transport=httpx.MockTransport(handle)))
    assert hb.interval_s == 10.0
    hb.beat()
    assert hb.interval_s == 2.0
    hb.beat()  # a longer interval never slows it down
    hb.beat()  # nor does a header it cannot read
    hb.beat()
    assert hb.interval_s == 2.0
